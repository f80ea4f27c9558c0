"""Golden records: one row per entity, each field chosen by a survivorship rule.

Rules (per field, ties broken by the next key, finally by record id for determinism):
  most_frequent  email, phone, user_id      value most members share, then most recent
  most_complete  name                       longest value ("Jonathan Smith" over "J Smith")
  most_recent    address, city, country,    latest created_date / ingested_at: people move
                 status
  earliest       created_date               first time the entity appeared
`sources` records, per field, the id of the record whose value was chosen.
One DuckDB statement over Arrow tables: no per-row Python.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

RECENT = "created_date DESC NULLS LAST, ingested_at DESC NULLS LAST, id"
RULES: dict[str, tuple[str, str]] = {
    # field: (rule name, ORDER BY inside the entity)
    "email": ("most_frequent", "__freq_email DESC, " + RECENT),
    "phone": ("most_frequent", "__freq_phone DESC, " + RECENT),
    "user_id": ("most_frequent", "__freq_user_id DESC, " + RECENT),
    "name": ("most_complete", "length(name) DESC, __freq_name DESC, " + RECENT),
    "address": ("most_recent", RECENT),
    "city": ("most_recent", RECENT),
    "country": ("most_recent", RECENT),
    "status": ("most_recent", RECENT),
    "created_date": ("earliest", "created_date ASC, id"),
}
FREQ_FIELDS = ("email", "phone", "user_id", "name")
GOLDEN_INPUT_COLUMNS = (
    "id", "user_id", "email", "name", "phone", "address", "city", "country", "created_date",
    "status", "source_file", "ingested_at", "data_quality_score",
)


def golden_sql(members: str) -> str:
    """`members`: relation with GOLDEN_INPUT_COLUMNS + entity_id, cluster_size,
    model_version. Returns one golden row per entity_id (without resolved_at)."""
    freq = ",\n        ".join(
        f"count(*) OVER (PARTITION BY entity_id, {f}) AS __freq_{f}" for f in FREQ_FIELDS
    )
    picks = []
    for field, (_, order) in RULES.items():
        present = (f"{field} IS NOT NULL" if field == "created_date"
                   else f"coalesce({field}, '') <> ''")
        picks.append(
            f"first(struct_pack(v := {field}, src := id) ORDER BY {order})"
            f" FILTER (WHERE {present}) AS __p_{field}"
        )
    picks_sql = ",\n        ".join(picks)
    fields = list(RULES)
    srcs = ", ".join(f"__p_{f}.src" for f in fields)
    sources = ", ".join(f"{f} := __p_{f}.src" for f in fields)
    values = ",\n    ".join(
        f"__p_{f}.v AS {f}" if f == "created_date" else f"coalesce(__p_{f}.v, '') AS {f}"
        for f in fields
    )
    return f"""
WITH m AS (
    SELECT *,
        {freq}
    FROM {members}
), g AS (
    SELECT entity_id,
        any_value(cluster_size) AS cluster_size,
        any_value(model_version) AS model_version,
        list(id ORDER BY id) AS record_ids,
        max(ingested_at) AS ingested_at,
        max(data_quality_score) AS data_quality_score,
        first(source_file ORDER BY {RECENT}) AS source_file,
        first(id ORDER BY length(coalesce(name, '')) + length(coalesce(email, ''))
              + length(coalesce(phone, '')) + length(coalesce(address, '')) DESC, id)
            AS most_complete_id,
        {picks_sql}
    FROM m GROUP BY entity_id
)
SELECT
    entity_id,
    coalesce(list_aggregate(list_filter([{srcs}], lambda s: s IS NOT NULL), 'mode'),
             most_complete_id) AS id,
    {values},
    source_file, ingested_at,
    CAST(coalesce(data_quality_score, 0) AS FLOAT) AS data_quality_score,
    CAST(cluster_size AS UINTEGER) AS cluster_size,
    record_ids,
    CAST(to_json(struct_pack({sources})) AS VARCHAR) AS sources,
    model_version,
    CAST(0 AS UTINYINT) AS is_deleted
FROM g
"""


def golden_records(members: pa.Table, con: duckdb.DuckDBPyConnection | None = None) -> pa.Table:
    """Golden rows for the entities in `members` (see golden_sql)."""
    con = con or duckdb.connect()
    con.register("__members_in", members)
    try:
        return con.sql(golden_sql("__members_in")).to_arrow_table()
    finally:
        con.unregister("__members_in")
