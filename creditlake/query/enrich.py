"""Enrichment: the one person an e-mail, phone, user id (or name + city/country) identifies.

Input values are read by the ingestion rules (normalize.read_values), so a phone written any
way ingestion accepts finds the record it produced. Candidates are the records sharing at
least one identifier with the input: one UNION ALL branch per identifier, so each lookup uses
its own skip index (an OR across columns would scan). Every candidate is scored by the input
fields it matches; where entity resolution has run, candidates of one entity are one person and
the entity's golden record answers, else the best record does (score, then quality, then most
recent).

confidence = 1 - prod(1 - WEIGHTS[f]) over the matched fields, shared among the persons tied
at the top score (two different people with the same name and city: 0.3 each, not 0.6).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import pyarrow as pa

from creditlake.clickhouse.base import Engine
from creditlake.query.errors import InvalidQuery
from creditlake.query.execute import QUERY_SETTINGS, rows_json
from creditlake.query.fields import DEFAULT_FIELDS, FIELDS
from creditlake.query.normalize import Value, read_values

IDENTIFIERS = ("email", "phone", "user_id")
CONTEXT = ("name", "city", "country")
INPUT_FIELDS = IDENTIFIERS + CONTEXT
# How much one matched field says about identity (an e-mail nearly proves it, a city barely).
WEIGHTS = {"email": 0.9, "phone": 0.8, "user_id": 0.7, "name": 0.5, "city": 0.2, "country": 0.1}
MAX_CANDIDATES = 50
MAX_BATCH = 100
_CASELESS = frozenset({"name", "city"})  # stored as written: compared case-insensitively
_OUT = "__o_"
_RESOLVED_DBS: set[str] = set()  # databases known to hold the entity tables

Text = Annotated[str, msgspec.Meta(max_length=1000)]


class EnrichInput(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Who to look up: email, phone or user_id, or name with city or country, or an entity id
    returned earlier (kept working after merges)."""

    entity_id: Text | None = None
    email: Text | None = None
    phone: Text | None = None
    user_id: Text | None = None
    name: Text | None = None
    city: Text | None = None
    country: Text | None = None


@dataclass(frozen=True)
class Lookup:
    """An input read the way ingestion reads values: field -> stored form."""

    values: dict[str, str]

    @property
    def key(self) -> str:
        return msgspec.json.encode(sorted(self.values.items())).decode()


@dataclass(frozen=True)
class Match:
    record: bytes  # JSON object of the person (golden record or best record)
    confidence: float
    matched_on: list[str]
    candidates: int  # distinct persons that shared an identifier with the input
    source: str  # "entity" (golden record) | "record"
    entity_id: str | None = None
    cluster_size: int | None = None


def read_lookup(inp: EnrichInput, where: str = "") -> Lookup:
    """Validate and normalize one input; InvalidQuery when it identifies nobody."""
    given = {f: v for f in INPUT_FIELDS if isinstance(v := getattr(inp, f), str) and v.strip()}
    wanted = {f: Value(f, v, given.get("country") if f == "phone" else None)
              for f, v in given.items()}
    try:
        stored = read_values(wanted.values())
    except InvalidQuery as exc:
        raise InvalidQuery(where + exc.message) from exc
    values = {f: stored[v] for f, v in wanted.items() if stored[v]}
    if isinstance(inp.entity_id, str) and inp.entity_id.strip():
        values["entity_id"] = inp.entity_id.strip()  # an id, not a value ingestion reads
    if not identifies(values):
        raise InvalidQuery(f"{where}give email, phone or user_id, or name with city or "
                           "country: nothing else identifies a person")
    return Lookup(values)


def identifies(values: dict[str, str]) -> bool:
    return bool(set(values) & {"entity_id", *IDENTIFIERS}) or (
        "name" in values and bool({"city", "country"} & set(values)))


def candidates_sql(lookup: Lookup, database: str) -> tuple[str, dict[str, Any]]:
    """Candidate records, best first, with one 0/1 column per matched input field."""
    params: dict[str, Any] = {}
    flags = []
    for f in INPUT_FIELDS:
        if f in lookup.values:
            params[f"v_{f}"] = lookup.values[f]
            col = f"lowerUTF8({f})" if f in _CASELESS else f
            val = f"lowerUTF8({{v_{f}:String}})" if f in _CASELESS else f"{{v_{f}:String}}"
            flags.append(f"toUInt8({col} = {val}) AS __m_{f}")
        else:
            flags.append(f"toUInt8(0) AS __m_{f}")
    select = ", ".join(["toString(id) AS __rid"]
                       + [f"{FIELDS[f].select_sql} AS {_OUT}{f}" for f in DEFAULT_FIELDS]
                       + flags + ["data_quality_score AS __q", "ingested_at AS __t"])
    table = f"{database}.records"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
        raise ValueError(f"bad database name {database!r}")
    parts = []
    for f in IDENTIFIERS:
        if f in lookup.values:
            parts.append(f"SELECT {select} FROM {table} WHERE {f} = {{v_{f}:String}}")
    if "name" in lookup.values and ({"city", "country"} & set(lookup.values)):
        near = ["lowerUTF8(city) = lowerUTF8({v_city:String})"] if "city" in lookup.values \
            else []
        near += ["country = {v_country:String}"] if "country" in lookup.values else []
        parts.append(f"SELECT {select} FROM {table} WHERE lowerUTF8(name) = "
                     f"lowerUTF8({{v_name:String}}) AND ({' OR '.join(near)})")
    score = " * ".join(f"(1 - {WEIGHTS[f]} * __m_{f})" for f in INPUT_FIELDS)
    sql = (f"SELECT DISTINCT *, 1 - {score} AS __score FROM ({' UNION ALL '.join(parts)})"
           f" ORDER BY __score DESC, __q DESC, __t DESC, __rid LIMIT {MAX_CANDIDATES}")
    return sql, params


def find(engine: Engine, lookup: Lookup) -> Match | None:
    """The person the lookup identifies, or None (runs on the engine: a few small queries)."""
    db = engine.database
    if "entity_id" in lookup.values:
        return _by_entity_id(engine, db, lookup.values["entity_id"])
    sql, params = candidates_sql(lookup, db)
    table = engine.query_arrow(sql, parameters=params, settings=QUERY_SETTINGS)
    if table.num_rows == 0:
        return None
    rows = table.select(["__rid", "__score", *[f"__m_{f}" for f in INPUT_FIELDS]]).to_pylist()
    entity_of = _entities(engine, db, [r["__rid"] for r in rows])
    # first row of each person is its best (rows are sorted best first)
    persons: dict[str, int] = {}
    for i, r in enumerate(rows):
        persons.setdefault(entity_of.get(r["__rid"], ("r:" + r["__rid"], 0))[0], i)
    top = rows[0]
    tied = sum(1 for i in persons.values() if rows[i]["__score"] >= top["__score"] - 1e-9)
    matched = [f for f in INPUT_FIELDS if top[f"__m_{f}"]]
    confidence = round(float(top["__score"]) / tied, 4)
    entity = entity_of.get(top["__rid"])
    if entity is not None:
        golden = _golden(engine, db, entity[0])
        if golden is not None:
            return Match(golden, confidence, matched, len(persons), "entity", entity[0],
                         entity[1])
    record = rows_json(_public(table.slice(0, 1)))[1:-1]
    return Match(record, confidence, matched, len(persons), "record")


def _by_entity_id(engine: Engine, db: str, entity_id: str) -> Match | None:
    """The entity an id names now (an id absorbed in a merge names the survivor)."""
    from creditlake.entity.lookup import current_entity_id

    if not _resolved(engine, db) or (now := current_entity_id(engine, entity_id)) is None:
        return None
    golden = _golden(engine, db, now)
    if golden is None:
        return None
    return Match(golden, 1.0, ["entity_id"], 1, "entity", now, _cluster_size(golden))


def _cluster_size(record: bytes) -> int | None:
    size = msgspec.json.decode(record).get("cluster_size")
    return int(size) if size is not None else None


def _resolved(engine: Engine, db: str) -> bool:
    """Has entity resolution written its tables here? (asked once: they are never dropped)"""
    if db not in _RESOLVED_DBS:
        exists = engine.query_rows(
            "SELECT count() FROM system.tables WHERE database = {db:String} AND name IN "
            "('entities', 'golden_records', 'entity_aliases')", parameters={"db": db})
        if int(exists[0][0]) < 3:
            return False
        _RESOLVED_DBS.add(db)
    return True


def _public(table: pa.Table) -> pa.Table:
    keep = [n for n in table.column_names if n.startswith(_OUT)]
    return table.select(keep).rename_columns([n.removeprefix(_OUT) for n in keep])


def _entities(engine: Engine, db: str, record_ids: list[str]) -> dict[str, tuple[str, int]]:
    """record id -> (entity id, cluster size), where entity resolution has run."""
    if not _resolved(engine, db):
        return {}
    rows = engine.query_rows(
        f"SELECT record_id, argMax(entity_id, resolved_at), argMax(cluster_size, resolved_at)"
        f" FROM {db}.entities WHERE record_id IN {{ids:Array(String)}} GROUP BY record_id",
        parameters={"ids": record_ids})
    return {r[0]: (r[1], int(r[2])) for r in rows}


def _golden(engine: Engine, db: str, entity_id: str) -> bytes | None:
    from creditlake.entity.query import golden_source_sql

    select = ", ".join(f"{FIELDS[f].select_sql} AS {_OUT}{f}" for f in DEFAULT_FIELDS)
    table = engine.query_arrow(
        f"SELECT {select}, entity_id AS {_OUT}entity_id, cluster_size AS {_OUT}cluster_size"
        f" FROM {golden_source_sql(db)} AS golden WHERE entity_id = {{e:String}} LIMIT 1",
        parameters={"e": entity_id}, settings=QUERY_SETTINGS)
    return rows_json(_public(table))[1:-1] if table.num_rows else None


class NoMatch(LookupError):
    """No person matches an enrichment input (the API's 404 NOT_FOUND; nothing charged)."""
