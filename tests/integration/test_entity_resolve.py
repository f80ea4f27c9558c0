"""Entity resolution end to end on real chDB: full, incremental, golden records, placeholders,
suspicious clusters, the Dagster asset + check, and the golden-records query for the API."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pytest

from creditlake.entity.ddl import migrate_entities
from creditlake.entity.model import load_model
from creditlake.entity.resolve import resolve
from creditlake.entity.suspicious import suspicious_clusters
from creditlake.entity.synthetic import generate_people, to_records_table

pytestmark = pytest.mark.integration


def _load(engine, table: pa.Table) -> None:
    engine.insert_arrow(f"{engine.database}.records", table)


def _pairwise_f1(engine) -> tuple[float, float]:
    rows = engine.query_rows(f"""
        SELECT e.entity_id, JSONExtractInt(r.metadata, 'ref')
        FROM {engine.database}.entities AS e FINAL
        JOIN {engine.database}.records AS r ON toString(r.id) = e.record_id""")

    def pairs(counter: Counter) -> int:
        return sum(n * (n - 1) // 2 for n in counter.values())

    tp = pairs(Counter(rows))
    predicted = pairs(Counter(e for e, _ in rows))
    actual = pairs(Counter(ref for _, ref in rows))
    return tp / predicted, tp / actual


@pytest.fixture(scope="module")
def people() -> pa.Table:
    return to_records_table(generate_people(1600, seed=21, placeholder_rate=0.02))


def test_full_then_incremental(engine, people) -> None:
    model = load_model()
    _load(engine, people.slice(0, 1000))
    first = resolve(engine, model, "incremental")  # nothing resolved yet: a full run
    assert first.mode == "full" and first.records_in == 1000
    db = engine.database
    assert engine.query_rows(f"SELECT count() FROM {db}.entities FINAL")[0][0] == 1000
    precision, recall = _pairwise_f1(engine)
    assert precision > 0.97 and recall > 0.95, (precision, recall)

    _load(engine, people.slice(1000))
    second = resolve(engine, model, "incremental")
    assert second.mode == "incremental" and second.records_in == 600
    # Only blocks of the new records were read back, not the whole table.
    assert 0 < second.candidates < 1000
    assert second.links > 0
    rows = engine.query_rows(
        f"SELECT count(), uniqExact(entity_id), uniqExact(model_version) FROM {db}.entities FINAL")
    assert rows[0][0] == 1600 and rows[0][2] == 1
    precision, recall = _pairwise_f1(engine)
    assert precision > 0.97 and recall > 0.95, (precision, recall)

    # One live golden row per entity, sizes consistent with the assignment.
    golden = engine.query_rows(
        f"SELECT count(), sum(cluster_size) FROM {db}.golden_records FINAL WHERE is_deleted = 0")
    assert golden[0] == (rows[0][1], 1600)
    # The API's resolve=entity path: golden rows through the real query compiler.
    from creditlake.entity.query import compile_golden_query
    from creditlake.query import parse_request, run_query

    q = compile_golden_query(parse_request(
        {"fields": ["id", "name", "email"], "sort": {"field": "name"}, "limit": 50}), db)
    out = run_query(engine, q)
    data = json.loads(out.data_json)
    assert out.returned == 50 and out.total_records == rows[0][1]
    assert set(data[0]) == {"id", "name", "email", "entity_id", "cluster_size",
                            "match_probability", "sources", "agreement"}
    multi = [d for d in data if d["cluster_size"] > 1]
    assert all(d["entity_id"] for d in data) and multi
    # One-record entities store no sources/agreement JSON: the answer derives them.
    singles = [d for d in data if d["cluster_size"] == 1]
    assert singles and all(
        d["sources"]["name"] == (d["id"] if d["name"] else "")
        and d["agreement"]["name"] == (1 if d["name"] else 0) for d in singles)
    country = engine.query_rows(f"SELECT country FROM {db}.records LIMIT 1")[0][0]
    q = compile_golden_query(parse_request({"filters": {"country": country}, "limit": 10}), db)
    assert all(r["country"] == country for r in json.loads(run_query(engine, q).data_json))
    # Nothing new: an incremental run is a no-op.
    third = resolve(engine, model, "incremental")
    assert third.records_in == 0 and third.entities_changed == 0

    # Incremental ends where a full run from scratch ends (same partition of records).
    inc = dict(engine.query_rows(f"SELECT record_id, entity_id FROM {db}.entities FINAL"))
    resolve(engine, model, "full")
    full = dict(engine.query_rows(f"SELECT record_id, entity_id FROM {db}.entities FINAL"))
    assert _partition(inc) == _partition(full)


def _partition(assign: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for rec, ent in assign.items():
        groups.setdefault(ent, set()).add(rec)
    return {frozenset(g) for g in groups.values()}


def test_golden_record_survivorship(engine) -> None:
    base = {"source_file": "a.csv", "country": "GB", "status": "active", "metadata": "{}",
            "data_quality_score": 1.0, "validation_errors": [], "user_id": "",
            "city": "Leeds"}
    import datetime as dt
    import uuid

    def row(**kw):
        r = dict(base, id=str(uuid.uuid4()), record_hash=uuid.uuid4().hex, **kw)
        r["ingested_at"] = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        return r

    rows = [
        row(name="J Smith", email="john.smith@gmail.com", phone="+447700900123",
            address="1 Old Road", created_date=dt.date(2020, 1, 1)),
        row(name="Jonathan Smith", email="john.smith@gmail.com", phone="+447700900123",
            address="1 Old Road", created_date=dt.date(2021, 1, 1)),
        row(name="Jonathan Smith", email="john.smith@work.com", phone="+447700900123",
            address="9 New Street", created_date=dt.date(2023, 6, 1)),
    ]
    table = pa.Table.from_pylist(rows)
    table = table.set_column(table.schema.get_field_index("created_date"), "created_date",
                             pa.array([r["created_date"] for r in rows], pa.date32()))
    _load(engine, table)
    # Background population: term frequencies need more than three records to mean anything.
    _load(engine, to_records_table(generate_people(400, seed=9, dup_rate=0.0)))
    resolve(engine, load_model(), "full")
    db = engine.database
    (g,) = engine.query_rows(
        f"SELECT name, email, phone, address, created_date, cluster_size, sources, record_ids"
        f" FROM {db}.golden_records FINAL WHERE is_deleted = 0 AND has(record_ids, {{i:String}})",
        {"i": rows[0]["id"]})
    name, email, phone, address, created, size, sources, ids = g
    assert size == 3 and sorted(ids) == sorted(r["id"] for r in rows)
    assert name == "Jonathan Smith"  # most complete
    assert email == "john.smith@gmail.com"  # most frequent
    assert phone == "+447700900123"
    assert address == "9 New Street"  # most recent
    assert created == dt.date(2020, 1, 1)  # earliest
    src = json.loads(sources)
    assert src["address"] == rows[2]["id"] and src["created_date"] == rows[0]["id"]
    assert src["email"] in {rows[0]["id"], rows[1]["id"]}


def test_placeholders_do_not_create_giant_clusters(engine) -> None:
    """600 different people share placeholder e-mails/phones/names, 120 share one real-looking
    e-mail (too frequent to be one person): no cluster may grow beyond a real family size."""
    people = generate_people(1500, seed=5, dup_rate=0.0, placeholder_rate=0.0)
    n = people.num_rows
    emails = people["email"].to_pylist()
    phones = people["phone"].to_pylist()
    names = people["name"].to_pylist()
    for i in range(600):
        emails[i] = ("test@test.com", "N/A", "noemail@example.com", "unknown")[i % 4]
        phones[i] = ("000-000-0000", "N/A", "1234567890", "")[i % 4]
        if i % 3 == 0:
            names[i] = "N/A"
    for i in range(600, 720):
        emails[i] = "info@bigshop.com"
    people = people.set_column(people.schema.get_field_index("email"), "email",
                               pa.array(emails))
    people = people.set_column(people.schema.get_field_index("phone"), "phone",
                               pa.array(phones))
    people = people.set_column(people.schema.get_field_index("name"), "name", pa.array(names))
    _load(engine, to_records_table(people))
    model = load_model()
    res = resolve(engine, model, "full")
    db = engine.database
    biggest = engine.query_rows(f"SELECT max(cluster_size) FROM {db}.entities FINAL")[0][0]
    assert biggest <= 3, res.largest_clusters
    # All distinct people: (almost) no links at all.
    assert res.entities_total >= n - 10
    assert suspicious_clusters(engine, model.max_cluster_size).passed


def test_suspicious_cluster_check_flags_oversized_and_multi_domain(engine) -> None:
    assert migrate_entities(engine) == migrate_entities(engine)  # idempotent DDL
    import datetime as dt
    import uuid

    now = dt.datetime.now(dt.UTC)
    recs, ents = [], []
    for i in range(8):  # one entity: 8 records over 4 mail providers, all high confidence
        rid = str(uuid.uuid4())
        recs.append({"id": rid, "email": f"p{i}@{['a.com', 'b.com', 'c.com', 'd.com'][i % 4]}"})
        ents.append({"record_id": rid, "entity_id": "E1", "cluster_size": 8,
                     "match_probability": 0.999})
    db = engine.database
    engine.insert_arrow(f"{db}.records", pa.table({
        "id": [r["id"] for r in recs], "email": [r["email"] for r in recs],
        "record_hash": [uuid.uuid4().hex for _ in recs]}))
    engine.insert_arrow(f"{db}.entities", pa.Table.from_pylist(ents).append_column(
        "model_version", pa.array(["t"] * 8)).append_column(
        "resolved_at", pa.array([now] * 8, pa.timestamp("ms", "UTC"))))
    rep = suspicious_clusters(engine, max_cluster_size=50)
    assert not rep.passed
    (s,) = rep.suspicious
    assert s["entity_id"] == "E1" and s["reason"] == "email_domains" and s["email_domains"] == 4
    assert len(s["sample_record_ids"]) == 5
    rep = suspicious_clusters(engine, max_cluster_size=5)
    assert rep.suspicious[0]["reason"] == "size"


def test_incremental_bridge_merges_two_entities(engine) -> None:
    """A new record that matches two resolved entities merges them: one entity id survives,
    the other's golden row is tombstoned (is_deleted = 1)."""
    import datetime as dt
    import uuid

    def row(**kw) -> dict:
        return {"id": str(uuid.uuid4()), "record_hash": uuid.uuid4().hex, "source_file": "s.csv",
                "country": "GB", "status": "active", "user_id": "", "city": "Leeds",
                "metadata": '{"dob": "1980-02-03"}', "data_quality_score": 1.0,
                "validation_errors": [], "created_date": dt.date(2022, 1, 1),
                "ingested_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC), **kw}

    a = row(name="Maria Kowalska", email="maria.k@gmail.com", phone="+447700900111",
            address="1 Mill Lane")
    b = row(name="Maria Kowalska", email="mkowalska@yahoo.com", phone="+447700900222",
            address="7 Park Road")
    _load(engine, to_records_table(generate_people(400, seed=13, dup_rate=0.0)))
    _load(engine, pa.Table.from_pylist([a, b]).cast(_schema(engine)))
    model = load_model()
    resolve(engine, model, "full")
    db = engine.database
    ent = dict(engine.query_rows(f"SELECT record_id, entity_id FROM {db}.entities FINAL"))
    assert ent[a["id"]] != ent[b["id"]]  # different email, phone and address: kept apart

    c = row(name="Maria Kowalska", email="maria.k@gmail.com", phone="+447700900222",
            address="1 Mill Lane")
    _load(engine, pa.Table.from_pylist([c]).cast(_schema(engine)))
    res = resolve(engine, model, "incremental")
    assert res.entities_merged_away == 1, json.dumps(res.examples, indent=1)[:3000]
    ent = dict(engine.query_rows(f"SELECT record_id, entity_id FROM {db}.entities FINAL"))
    assert ent[a["id"]] == ent[b["id"]] == ent[c["id"]] == min(ent[a["id"]], ent[b["id"]])
    live = engine.query_rows(
        f"SELECT entity_id, cluster_size FROM {db}.golden_records FINAL"
        f" WHERE is_deleted = 0 AND has(record_ids, {{i:String}})", {"i": c["id"]})
    assert live == [(ent[c["id"]], 3)]
    gone = {ent_id for ent_id in (a["id"], b["id"]) if ent_id != ent[c["id"]]}
    deleted = engine.query_rows(
        f"SELECT entity_id FROM {db}.golden_records WHERE is_deleted = 1")
    assert {d for (d,) in deleted} == gone


def _schema(engine) -> pa.Schema:
    return pa.schema([
        ("id", pa.string()), ("record_hash", pa.string()), ("source_file", pa.string()),
        ("country", pa.string()), ("status", pa.string()), ("user_id", pa.string()),
        ("city", pa.string()), ("metadata", pa.string()), ("data_quality_score", pa.float32()),
        ("validation_errors", pa.list_(pa.string())), ("created_date", pa.date32()),
        ("ingested_at", pa.timestamp("ms", "UTC")), ("name", pa.string()),
        ("email", pa.string()), ("phone", pa.string()), ("address", pa.string()),
    ])
