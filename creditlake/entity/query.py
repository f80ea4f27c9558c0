"""Golden records for the query API (`"resolve": "entity"` in POST /api/v1/query).

`golden_source_sql(db)` is a drop-in replacement for `{db}.records` in a FROM clause: the live
golden rows (one per entity) under the master-schema column names and types, plus
`entity_id`, `cluster_size` and `sources`. Every filter, sort and cursor the query compiler
builds for `records` therefore works unchanged on it.
`compile_golden_query(req, db)` is that compiler run over this source with `entity_id` (and
`cluster_size`) added to every returned row. Credits are charged on rows returned, as always.
"""

from __future__ import annotations

import re
from typing import Any

from creditlake.schema import RECORD_COLUMNS

ENTITY_OUTPUT_FIELDS = ("entity_id", "cluster_size")


def golden_source_sql(database: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
        raise ValueError(f"bad database name {database!r}")
    cols = []
    for c in RECORD_COLUMNS:
        if c.name == "id":
            cols.append("toUUID(id) AS id")
        else:
            cols.append(f"CAST({c.name} AS {c.clickhouse}) AS {c.name}")
    cols += ["entity_id", "cluster_size", "sources"]
    return (f"(SELECT {', '.join(cols)} FROM {database}.golden_records FINAL"
            f" WHERE is_deleted = 0 AND record_hash != '')")


def compile_golden_query(req: Any, database: str) -> Any:
    """creditlake.query.compile_query over golden records; rows gain entity_id, cluster_size.

    `req` is the validated QueryRequest (filters/fields/sort/limit/offset/cursor); the
    compiler has already rejected unknown fields and operators before any SQL exists.
    """
    from creditlake.query.compiler import compile_query

    q = compile_query(req, database, source=f"{golden_source_sql(database)} AS golden",
                      extra_fields=ENTITY_OUTPUT_FIELDS, variant="entity")
    q.normalized = {**q.normalized, "resolve": "entity"}
    return q
