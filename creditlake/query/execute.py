"""Run a CompiledQuery on an Engine and shape the answer for the API (JSON built in Rust)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import polars as pl

from creditlake.clickhouse.base import Engine
from creditlake.query.compiler import KEY_PREFIX, OUT_PREFIX, CompiledQuery, encode_cursor

# Bounds on one API query inside ClickHouse; a timeout is an EngineError (never charged).
QUERY_SETTINGS = {"max_execution_time": 30, "max_result_rows": 20_000,
                  "result_overflow_mode": "throw"}


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
    table = engine.query_arrow(q.sql, parameters=q.params, settings=QUERY_SETTINGS)
    has_more = table.num_rows > q.limit
    if has_more:
        table = table.slice(0, q.limit)
    returned = table.num_rows
    next_cursor = None
    key_cols = [n for n in table.column_names if n.startswith(KEY_PREFIX)]
    if has_more and returned:
        last = [str(table.column(n)[returned - 1].as_py()) for n in key_cols]
        next_cursor = encode_cursor(last, q.fingerprint, q.page)
    table = table.drop_columns(key_cols)
    data = pl.from_arrow(table.rename_columns([n.removeprefix(OUT_PREFIX)
                                               for n in table.column_names]))
    assert isinstance(data, pl.DataFrame)
    data_json = data.write_json().encode() if returned else b"[]"
    if not with_total:
        total = -1
    elif not q.uses_cursor and not has_more and (q.offset == 0 or returned):
        total = q.offset + returned  # the page holds the tail of the result: no count needed
    elif known_total is not None:
        total = known_total
    else:
        total = count(engine, q)
    return QueryResult(data_json, returned, total, next_cursor, q.page,
                       (time.perf_counter() - t0) * 1000)


def count(engine: Engine, q: CompiledQuery) -> int:
    rows = engine.query_rows(q.count_sql, parameters=q.count_params,
                             settings={"max_execution_time": 30})
    return int(rows[0][0])
