"""Golden records: one row per entity, each field chosen by a survivorship rule, in ClickHouse.

Rules (per field; a non-empty value always beats an empty one):
  most_frequent  email, phone, user_id   value most members share, then most recent
  most_complete  name                    longest value ("Jonathan Smith" over "J Smith")
  most_recent    address, city, country, latest created_date, then ingested_at: people move
                 status
  earliest       created_date            first time the entity appeared
`sources` (JSON) records, per field, the id of the record whose value was chosen, and
`agreement` (JSON) how many members carry exactly that value (3 of cluster_size 3: every
record agrees); `id` is the member with the most non-empty fields (the representative).
`match_probability` is the weakest member's best link: how sure the least certain merge was.

Computed by one INSERT ... SELECT inside ClickHouse (entities JOIN records): nothing crosses
into Python, and the same SQL runs on chDB and on a server. One-record entities (most of
them) skip the aggregation.
"""

from __future__ import annotations

from datetime import datetime

from creditlake.clickhouse.base import Engine
from creditlake.entity.ddl import GOLDEN_COLUMNS

RECENT = "ifNull(created_date, toDate('1970-01-01')), ingested_at"
RULES: dict[str, tuple[str, str]] = {
    # field: (rule, argMax ordering tuple body; larger wins)
    "email": ("most_frequent", f"email != '', f_email, {RECENT}"),
    "phone": ("most_frequent", f"phone != '', f_phone, {RECENT}"),
    "user_id": ("most_frequent", f"user_id != '', f_user_id, {RECENT}"),
    "name": ("most_complete", f"name != '', length(name), f_name, {RECENT}"),
    "address": ("most_recent", f"address != '', {RECENT}"),
    "city": ("most_recent", f"city != '', {RECENT}"),
    "country": ("most_recent", f"country != '', {RECENT}"),
    "status": ("most_recent", f"status != '', {RECENT}"),
}
FREQ_FIELDS = ("email", "phone", "user_id", "name")  # ranked by how many members share them
STRING_FIELDS = tuple(RULES)
COMPLETENESS = " + ".join(f"({f} != '')" for f in STRING_FIELDS) + " + isNotNull(created_date)"


def _members_sql(db: str, members: str, size_cond: str) -> str:
    """Member records with their entity. entities (small) is the hash-join build side.

    `members`: a subquery of record ids (String) to restrict both sides to; records are then
    read by id (one column scanned, the others only for those rows), not all of them.
    """
    where = f"AND record_id IN ({members})" if members else ""
    records_where = f"WHERE r.id IN (SELECT toUUID(record_id) FROM ({members}))" if members else ""
    return f"""
        SELECT e.entity_id AS entity_id, e.cluster_size AS cluster_size,
               e.model_version AS model_version, e.match_probability AS member_p,
               toString(r.id) AS id, r.user_id AS user_id,
               r.email AS email, r.name AS name, r.phone AS phone, r.address AS address,
               r.city AS city, toString(r.country) AS country, r.created_date AS created_date,
               toString(r.status) AS status, toString(r.source_file) AS source_file,
               r.ingested_at AS ingested_at, r.data_quality_score AS data_quality_score,
               toString(r.record_hash) AS record_hash, r.metadata AS metadata,
               r.validation_errors AS validation_errors
        FROM {db}.records AS r
        INNER JOIN (
            SELECT record_id, entity_id, cluster_size, model_version, match_probability
            FROM {db}.entities AS e FINAL WHERE cluster_size {size_cond} {where}
        ) AS e ON toString(r.id) = e.record_id
        {records_where}"""


def golden_insert_sql(db: str, resolved_at: datetime, members: str = "") -> str:
    """INSERT golden rows for every entity, or for the entities whose member record ids
    `members` (a subquery) lists; it must list every member of each."""
    ts = f"toDateTime64('{resolved_at.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]}', 3, 'UTC')"
    cols = [c for c, _ in GOLDEN_COLUMNS]
    common = {"resolved_at": ts, "is_deleted": "toUInt8(0)",
              "cluster_size": "toUInt32(cluster_size)"}
    single = {c: c for c in cols} | common | {
        "record_ids": "[id]",
        "sources": "toJSONString(map(" + ", ".join(
            f"'{f}', if({f} != '', id, '')" for f in STRING_FIELDS)
        + ", 'created_date', if(isNotNull(created_date), id, '')))",
        "agreement": "toJSONString(map(" + ", ".join(
            f"'{f}', toUInt32({f} != '')" for f in STRING_FIELDS) + "))",
        "match_probability": "toFloat64(1.0)",
    }
    freq = ",\n               ".join(
        f"count() OVER (PARTITION BY entity_id, {f}) AS f_{f}" for f in FREQ_FIELDS)
    # (value, record id, members with that value): window counts where the rule ranks by
    # them anyway, a count over the (small) member list for the others
    picks = ",\n            ".join(
        f"argMax(tuple({f}, id, f_{f}), tuple({order})) AS p_{f}" if f in FREQ_FIELDS else
        f"argMax(tuple({f}, id), tuple({order})) AS p_{f}" for f, (_, order) in RULES.items())
    agree = {f: f"p_{f}.3" if f in FREQ_FIELDS else f"arrayCount(x -> x = p_{f}.1, g_{f})"
             for f in STRING_FIELDS}
    lists = "".join(f"groupArray({f}) AS g_{f}, " for f in STRING_FIELDS
                    if f not in FREQ_FIELDS)
    multi = {c: c for c in cols} | common | {f: f"p_{f}.1" for f in STRING_FIELDS} | {
        "id": "rep.1", "record_hash": "rep.2", "metadata": "rep.3",
        "validation_errors": "rep.4", "created_date": "p_created.1",
        "cluster_size": "toUInt32(g_size)",
        "model_version": "g_version", "record_ids": "g_ids", "source_file": "g_source_file",
        "ingested_at": "g_ingested_at", "data_quality_score": "g_quality",
        "sources": "toJSONString(map(" + ", ".join(
            f"'{f}', if(p_{f}.1 != '', p_{f}.2, '')" for f in STRING_FIELDS)
        + ", 'created_date', ifNull(p_created.2, '')))",
        "agreement": "toJSONString(map(" + ", ".join(
            f"'{f}', toUInt32(if(p_{f}.1 != '', {agree[f]}, 0))" for f in STRING_FIELDS)
        + "))",
        "match_probability": "toFloat64(g_p)",
    }
    return f"""
INSERT INTO {db}.golden_records ({", ".join(cols)})
SELECT {", ".join(f"{single[c]} AS {c}" for c in cols)}
FROM ({_members_sql(db, members, "= 1")})
UNION ALL
SELECT {", ".join(f"{multi[c]} AS {c}" for c in cols)}
FROM (
    SELECT entity_id,
        any(cluster_size) AS g_size,
        any(model_version) AS g_version,
        arraySort(groupArray(id)) AS g_ids,
        argMax(tuple(id, record_hash, metadata, validation_errors),
               tuple({COMPLETENESS}, {RECENT}, id)) AS rep,
        argMax(source_file, tuple({RECENT})) AS g_source_file,
        max(ingested_at) AS g_ingested_at,
        max(data_quality_score) AS g_quality,
        min(member_p) AS g_p,
        {lists}
        argMinIf(tuple(created_date, id), tuple(created_date, id), isNotNull(created_date))
            AS p_created,
        {picks}
    FROM (
        SELECT *,
           {freq}
        FROM ({_members_sql(db, members, "> 1")})
    )
    GROUP BY entity_id
)
"""


def write_golden(engine: Engine, resolved_at: datetime, members: str = "") -> int:
    """Recompute golden rows (all entities, or those of the member record ids `members`)."""
    return engine.command(golden_insert_sql(engine.database, resolved_at, members))
