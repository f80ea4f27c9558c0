"""Golden records: one row per entity, each field chosen by a survivorship rule, in ClickHouse.

Rules (per field; a non-empty value always beats an empty one; an exact tie goes to the larger
record id (earliest: the smaller), so a re-run picks the same member):
  most_frequent  email, phone, user_id   value most members share, then most recent
  most_complete  name                    longest value ("Jonathan Smith" over "J Smith")
  most_recent    address, city, country, latest created_date, then ingested_at: people move
                 status
  earliest       created_date            first time the entity appeared
`sources` (JSON) records, per field, the id of the record whose value was chosen, and
`agreement` (JSON) how many members carry exactly that value (3 of cluster_size 3: every
record agrees); `id` is the member with the most non-empty fields (the representative).
A one-record entity stores both empty: its values all come from its one record, so readers
derive them (`single_source_sql`, `single_agreement_sql`) instead of every run writing a
few hundred bytes of JSON for each of the (many) one-record entities.
`match_probability` is the weakest member's best link: how sure the least certain merge was.

Computed by one INSERT ... SELECT inside ClickHouse (entities JOIN records): nothing crosses
into Python, and the same SQL runs on chDB and on a server. In a full run one-record entities
(most of them) skip the aggregation.
"""

from __future__ import annotations

from datetime import datetime

from creditlake.clickhouse.base import Engine
from creditlake.entity.ddl import GOLDEN_COLUMNS

# Orderings as (expression, bits) parts, most significant first; larger wins.
RECENT = (("toUInt16(ifNull(created_date, toDate('1970-01-01')))", 16),
          ("toUInt64(greatest(toUnixTimestamp64Milli(ingested_at), 0))", 48))


def _present(f: str) -> tuple[str, int]:
    return f"{f} != ''", 1


def _count(expr: str) -> tuple[str, int]:
    return f"least({expr}, 16777215)", 24


RULES: dict[str, tuple[str, tuple[tuple[str, int], ...]]] = {
    # field: (rule, ordering)
    "email": ("most_frequent", (_present("email"), _count("f_email"), *RECENT)),
    "phone": ("most_frequent", (_present("phone"), _count("f_phone"), *RECENT)),
    "user_id": ("most_frequent", (_present("user_id"), _count("f_user_id"), *RECENT)),
    "name": ("most_complete",
             (_present("name"), _count("length(name)"), _count("f_name"), *RECENT)),
    "address": ("most_recent", (_present("address"), *RECENT)),
    "city": ("most_recent", (_present("city"), *RECENT)),
    "country": ("most_recent", (_present("country"), *RECENT)),
    "status": ("most_recent", (_present("status"), *RECENT)),
}
FREQ_FIELDS = ("email", "phone", "user_id", "name")  # ranked by how many members share them
STRING_FIELDS = tuple(RULES)
COMPLETENESS = (" + ".join(f"({f} != '')" for f in STRING_FIELDS) + " + isNotNull(created_date)",
                4)
# A record id (canonical UUID text) as a number that orders like the text.
ID_RANK = "reinterpretAsUInt128(reverse(unhex(replaceAll(id, '-', ''))))"


def rank_key(parts: tuple[tuple[str, int], ...]) -> str:
    """One UInt256 ordering members like the tuple of `parts`, then by record id.

    argMax over a number is the aggregate's fast path (tuple keys and values go through
    generic copies: twice the CPU), and with the id every key is unique, so argMax(value, k)
    and argMax(id, k) pick the same member.
    """
    terms, shift = [f"toUInt256({ID_RANK})"], 128
    for expr, bits in reversed(parts):
        terms.append(f"bitShiftLeft(toUInt256({expr}), {shift})")
        shift += bits
    if shift > 256:
        raise ValueError(f"ordering needs {shift} bits")
    return " + ".join(reversed(terms))
SOURCE_KEYS = (*STRING_FIELDS, "created_date")  # the keys of `sources`


def single_source_sql(key: str) -> str:
    """`sources[key]` of a one-record entity, from its golden row: its record, if it has one."""
    has = "isNotNull(created_date)" if key == "created_date" else f"{key} != ''"
    return f"if({has}, toString(id), '')"


def single_agreement_sql(field: str) -> str:
    """`agreement[field]` of a one-record entity: 1 when it has the value."""
    return f"toUInt32({field} != '')"


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
        "record_ids": "[id]", "sources": "''", "agreement": "''",  # derived where read
        "match_probability": "toFloat64(1.0)",
    }
    freq = ",\n               ".join(
        f"count() OVER (PARTITION BY entity_id, {f}) AS f_{f}" for f in FREQ_FIELDS)
    # Per field: the value, its record id and (window counts where the rule ranks by them
    # anyway) how many members share it; a count over the (small) member list for the others.
    picks = []
    for f, (_, order) in RULES.items():
        key = rank_key(order)
        picks += [f"argMax({f}, {key}) AS v_{f}", f"argMax(id, {key}) AS s_{f}"]
        if f in FREQ_FIELDS:
            picks.append(f"argMax(f_{f}, {key}) AS n_{f}")
    rep = rank_key((COMPLETENESS, *RECENT))
    created = rank_key((("toUInt16(assumeNotNull(created_date))", 16),))
    agree = {f: f"n_{f}" if f in FREQ_FIELDS else f"arrayCount(x -> x = v_{f}, g_{f})"
             for f in STRING_FIELDS}
    lists = "".join(f"groupArray({f}) AS g_{f}, " for f in STRING_FIELDS
                    if f not in FREQ_FIELDS)
    # JSON by concatenation: the values are record ids (UUID text) and numbers, nothing to
    # escape, and it is a fraction of toJSONString(map(...))'s cost.
    sources = ", ',', ".join(
        [f"'\"{f}\":\"', if(v_{f} != '', s_{f}, ''), '\"'" for f in STRING_FIELDS]
        + ["'\"created_date\":\"', s_created, '\"'"])
    agreement = ", ',', ".join(
        f"'\"{f}\":', toString(toUInt32(if(v_{f} != '', {agree[f]}, 0)))"
        for f in STRING_FIELDS)
    multi = {c: c for c in cols} | common | {f: f"v_{f}" for f in STRING_FIELDS} | {
        "id": "rep_id", "record_hash": "rep_hash", "metadata": "rep_metadata",
        "validation_errors": "rep_errors", "created_date": "v_created",
        "cluster_size": "toUInt32(g_size)",
        "model_version": "g_version", "record_ids": "g_ids", "source_file": "g_source_file",
        "ingested_at": "g_ingested_at", "data_quality_score": "g_quality",
        "sources": f"concat('{{', {sources}, '}}')",
        "agreement": f"concat('{{', {agreement}, '}}')",
        "match_probability": "toFloat64(g_p)",
    }
    picks_sql = ",\n        ".join(picks)
    # All entities: one-record ones skip the aggregation (most of them). A few touched
    # entities: one aggregation over all of them reads `records` once instead of twice (it
    # also writes the JSON of their one-record entities, which readers ignore).
    single_branch = "" if members else f"""
SELECT {", ".join(f"{single[c]} AS {c}" for c in cols)}
FROM ({_members_sql(db, members, "= 1")})
UNION ALL"""
    return f"""
INSERT INTO {db}.golden_records ({", ".join(cols)}){single_branch}
SELECT {", ".join(f"{multi[c]} AS {c}" for c in cols)}
FROM (
    SELECT entity_id,
        any(cluster_size) AS g_size,
        any(model_version) AS g_version,
        arraySort(groupArray(id)) AS g_ids,
        argMax(id, {rep}) AS rep_id, argMax(record_hash, {rep}) AS rep_hash,
        argMax(metadata, {rep}) AS rep_metadata, argMax(validation_errors, {rep}) AS rep_errors,
        argMax(source_file, {rank_key(RECENT)}) AS g_source_file,
        max(ingested_at) AS g_ingested_at,
        max(data_quality_score) AS g_quality,
        min(member_p) AS g_p,
        {lists}
        argMinIf(created_date, {created}, isNotNull(created_date)) AS v_created,
        argMinIf(id, {created}, isNotNull(created_date)) AS s_created,
        {picks_sql}
    FROM (
        SELECT *,
           {freq}
        FROM ({_members_sql(db, members, ">= 1" if members else "> 1")})
    )
    GROUP BY entity_id
)
"""


def write_golden(engine: Engine, resolved_at: datetime, members: str = "") -> int:
    """Recompute golden rows (all entities, or those of the member record ids `members`)."""
    return engine.command(golden_insert_sql(engine.database, resolved_at, members))
