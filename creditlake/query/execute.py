"""Run a CompiledQuery on an Engine and shape the answer for the API (rows written as JSON by
the engine itself; Polars writes the enrichment answers)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from creditlake.clickhouse.base import Engine
from creditlake.query.compiler import KEY_PREFIX, ROW_COLUMN, CompiledQuery, encode_cursor
from creditlake.query.fields import JSON_COLUMN

# Bounds on one API query inside ClickHouse; a timeout is an EngineError (never charged).
# The JSON settings make the engine's rows read as Polars wrote them ("a/b", not "a\/b").
QUERY_SETTINGS = {"max_execution_time": 30, "max_result_rows": 20_000,
                  "result_overflow_mode": "throw",
                  "output_format_json_escape_forward_slashes": 0,
                  "output_format_json_quote_64bit_integers": 0,
                  "output_format_json_quote_denormals": 0}


@dataclass(frozen=True)
class QueryResult:
    data_json: bytes  # JSON array of row objects
    returned: int
    total_records: int
    next_cursor: str | None
    page: int
    engine_ms: float


def run_query(engine: Engine, q: CompiledQuery, *, with_total: bool = True,
              known_total: int | None = None) -> QueryResult:
    """Rows (limit + 1 fetched to detect a next page) and the total count of matching rows.

    known_total: a count of the same filters from a short-TTL cache (saves the count query
    on every further page of a cursor walk)."""
    t0 = time.perf_counter()
    page = run_page(engine, q)
    if not with_total:
        total = -1
    else:
        total = page_total(q, page)
        if total is None:
            total = known_total if known_total is not None else count(engine, q)
    return replace(page, total_records=total, engine_ms=(time.perf_counter() - t0) * 1000)


def run_page(engine: Engine, q: CompiledQuery) -> QueryResult:
    """The page alone (total_records -1): see page_total for when it also gives the total."""
    t0 = time.perf_counter()
    table = engine.query_arrow(q.sql, parameters=q.params, settings=QUERY_SETTINGS)
    has_more = table.num_rows > q.limit
    if has_more:
        table = table.slice(0, q.limit)
    returned = table.num_rows
    next_cursor = None
    if has_more and returned:
        last = [str(table.column(n)[returned - 1].as_py()) for n in table.column_names
                if n.startswith(KEY_PREFIX)]
        next_cursor = encode_cursor(last, q.fingerprint, q.page)
    return QueryResult(json_array(table.column(ROW_COLUMN)), returned, -1, next_cursor, q.page,
                       (time.perf_counter() - t0) * 1000)


def json_array(rows: pa.ChunkedArray) -> bytes:
    """The engine's JSON object per row joined into one JSON array, inside Arrow (one join)."""
    if len(rows) == 0:
        return b"[]"
    values = rows.combine_chunks()
    one_list = pa.ListArray.from_arrays(pa.array([0, len(values)], pa.int32()), values)
    joined = pc.binary_join(one_list, ",")[0]
    return b"[" + joined.as_buffer().to_pybytes() + b"]"


def page_total(q: CompiledQuery, page: QueryResult) -> int | None:
    """total_records when the page holds the tail of the result (no count query needed)."""
    has_more = page.next_cursor is not None
    if not q.uses_cursor and not has_more and (q.offset == 0 or page.returned):
        return q.offset + page.returned
    return None


def count(engine: Engine, q: CompiledQuery) -> int:
    rows = engine.query_rows(q.count_sql, parameters=q.count_params,
                             settings={"max_execution_time": 30})
    return int(rows[0][0])


def rows_json(table: pa.Table) -> bytes:
    """A JSON array of row objects; `metadata` (JSON text in the table) as a JSON object.

    Vectorized: Polars writes one line per row without metadata, and the stored object text is
    appended to each line (it is written by ingestion's own JSON encoder; anything that does
    not look like an object becomes {} rather than breaking the document)."""
    if table.num_rows == 0:
        return b"[]"
    data = pl.from_arrow(table)
    assert isinstance(data, pl.DataFrame)
    if JSON_COLUMN not in data.columns:
        return data.write_json().encode()
    rest = data.drop(JSON_COLUMN)
    # "\n" inside values is escaped by the JSON writer, so lines are rows
    lines = rest.write_ndjson().split("\n")[:data.height] if rest.width else ["{}"] * data.height
    raw = pl.col(JSON_COLUMN).fill_null("")
    obj = pl.when(raw.str.starts_with("{") & raw.str.ends_with("}")).then(raw).otherwise(
        pl.lit("{}"))
    head = pl.col("_line").str.strip_suffix("}") + (pl.lit(",") if rest.width else pl.lit(""))
    joined = (data.select(JSON_COLUMN).with_columns(pl.Series("_line", lines))
              .select(pl.concat_str([head, pl.lit(f'"{JSON_COLUMN}":'), obj, pl.lit("}")])
                      .str.join(",")).item())
    return ("[" + joined + "]").encode()
