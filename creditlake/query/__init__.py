"""Query model, validation and compilation to parameterized ClickHouse SQL."""

from creditlake.query.compiler import CompiledQuery, compile_query, decode_cursor, encode_cursor
from creditlake.query.errors import InvalidQuery
from creditlake.query.execute import QueryResult, count, page_total, run_page, run_query
from creditlake.query.fields import FIELDS, SORTABLE
from creditlake.query.model import MAX_LIMIT, QueryRequest, SortSpec, parse_request

__all__ = [
    "FIELDS", "MAX_LIMIT", "SORTABLE", "CompiledQuery", "InvalidQuery", "QueryRequest",
    "QueryResult", "SortSpec", "compile_query", "count", "decode_cursor", "encode_cursor",
    "page_total", "parse_request", "run_page", "run_query",
]
