"""Golden records for the query API (`"resolve": "entity"` in POST /api/v1/query).

`golden_source_sql(db)` is a drop-in replacement for `{db}.records` in a FROM clause: the live
golden rows (one per entity) under the master-schema column names and types, plus
`entity_id`, `cluster_size`, `match_probability`, `sources` and `agreement`. Every filter,
sort and cursor the query compiler builds for `records` therefore works unchanged on it.
`compile_golden_query(req, db)` is that compiler run over this source with the entity fields
added to every returned row. Two filters exist only here: `entity_id` (an id or a list; an id
absorbed in a merge still finds the entity it became part of) and `cluster_size` (a number or
{gt, gte, lt, lte}: `{"gte": 2}` = people seen in more than one record). Credits are charged
on rows returned, as always.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import msgspec

from creditlake.entity.golden import (
    SOURCE_KEYS,
    STRING_FIELDS,
    single_agreement_sql,
    single_source_sql,
)
from creditlake.entity.lookup import current_ids_sql
from creditlake.query.errors import InvalidQuery
from creditlake.schema import RECORD_COLUMNS

ENTITY_OUTPUT_FIELDS = ("entity_id", "cluster_size", "match_probability", "sources",
                        "agreement")
ENTITY_FILTERS = ("entity_id", "cluster_size")
MAX_IDS = 1000
SIZE_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "="}


def golden_source_sql(database: str, where: tuple[str, ...] = ()) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
        raise ValueError(f"bad database name {database!r}")
    cols = []
    for c in RECORD_COLUMNS:
        if c.name == "id":
            cols.append("toUUID(id) AS id")
        else:
            cols.append(f"CAST({c.name} AS {c.clickhouse}) AS {c.name}")
    cols += ["entity_id", "cluster_size", "match_probability",
             _object("sources", SOURCE_KEYS, "String", single_source_sql),
             _object("agreement", STRING_FIELDS, "UInt32", single_agreement_sql)]
    conds = " AND ".join(("is_deleted = 0", "record_hash != ''", *where))
    return (f"(SELECT {', '.join(cols)} FROM {database}.golden_records FINAL"
            f" WHERE {conds})")


def _object(column: str, keys: tuple[str, ...], ch_type: str,
            single: Callable[[str], str]) -> str:
    """A stored JSON text column as a named tuple: one JSON object per row in the answer.
    One-record entities store it empty; `single(key)` derives their values."""
    extract = "JSONExtractString" if ch_type == "String" else "JSONExtractUInt"
    values = ", ".join(f"if(cluster_size = 1, {single(k)}, {extract}({column}, '{k}'))"
                       for k in keys)
    names = ", ".join(f"{k} {ch_type}" for k in keys)
    return f"CAST(tuple({values}), 'Tuple({names})') AS {column}"


def entity_conditions(filters: dict[str, Any], database: str) -> tuple[list[str], dict]:
    """SQL conditions and bound parameters for the entity-only filters (validated)."""
    where: list[str] = []
    params: dict[str, Any] = {}
    if "entity_id" in filters:
        value = filters["entity_id"]
        ids = value if isinstance(value, list) else [value]
        if not ids or len(ids) > MAX_IDS or not all(
                isinstance(i, str) and 0 < len(i) <= 64 for i in ids):
            raise InvalidQuery(f"entity_id must be an id or a list of 1..{MAX_IDS} ids")
        params["__eids"] = ids
        where.append(f"entity_id IN {current_ids_sql(database, '__eids')}")
    if "cluster_size" in filters:
        value = filters["cluster_size"]
        ops = value if isinstance(value, dict) else {"eq": value}
        if not ops:
            raise InvalidQuery("cluster_size needs a number or {gt, gte, lt, lte}")
        for i, (op, n) in enumerate(sorted(ops.items())):
            if op not in SIZE_OPS:
                raise InvalidQuery(f"cluster_size does not support operator {op!r}")
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 10**9:
                raise InvalidQuery("cluster_size values must be whole numbers")
            params[f"__cs{i}"] = n
            where.append(f"cluster_size {SIZE_OPS[op]} {{__cs{i}:UInt32}}")
    return where, params


def compile_golden_query(req: Any, database: str) -> Any:
    """creditlake.query.compile_query over golden records; rows gain the entity fields.

    `req` is the validated QueryRequest (filters/fields/sort/limit/offset/cursor); the
    compiler has already rejected unknown fields and operators before any SQL exists.
    """
    from creditlake.query.compiler import compile_query

    filters = req.filters if isinstance(req.filters, dict) else {}
    where, params = entity_conditions(filters, database)
    rest = msgspec.structs.replace(req, filters={k: v for k, v in filters.items()
                                                 if k not in ENTITY_FILTERS})
    extra = {k: filters[k] for k in ENTITY_FILTERS if k in filters}
    variant = "entity"
    if extra:  # the entity filters are part of what the answer depends on
        blob = json.dumps(extra, sort_keys=True, default=str)
        variant += ":" + hashlib.sha256(blob.encode()).hexdigest()[:16]
    q = compile_query(rest, database,
                      source=f"{golden_source_sql(database, tuple(where))} AS golden",
                      extra_fields=ENTITY_OUTPUT_FIELDS, variant=variant)
    for bound in (q.params, q.count_params, q.page_count_params):
        bound.update(params)
    q.normalized = {**q.normalized, "resolve": "entity",
                    "filters": {**q.normalized.get("filters", {}), **extra}}
    return q
