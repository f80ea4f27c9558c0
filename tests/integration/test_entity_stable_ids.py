"""Stable entity ids: a re-export of known people under a new id column joins the existing
entities (same ids), merges are logged in entity_history, absorbed ids keep resolving (lookup
and `"resolve": "entity"` with an entity_id filter), full re-runs keep every id."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
from api_support import api_settings, new_user, sqlite_url
from litestar.testing import TestClient

from api.app import create_app
from api.config import ApiConfig
from creditlake import samples
from creditlake.entity.lookup import current_entity_id, current_entity_ids
from creditlake.entity.model import load_model
from creditlake.entity.resolve import resolve
from creditlake.entity.synthetic import generate_people, to_records_table
from creditlake.ingest.pipeline import ingest_paths
from creditlake.ledger import Ledger

pytestmark = pytest.mark.integration


def _entities(engine) -> dict[str, str]:
    return dict(engine.query_rows(
        f"SELECT record_id, entity_id FROM {engine.database}.entities FINAL"))


def test_reexport_under_a_new_id_column_joins_the_existing_entities(engine, settings,
                                                                   tmp_path) -> None:
    home = tmp_path / "home"
    crm = samples.people(300, seed=5, invalid_rate=0.0, duplicate_rate=0.0)
    first = tmp_path / "crm.csv"
    samples.styled(crm, "crm").write_csv(first)
    ingest_paths(engine, home, [first], processing=settings.processing)
    model = load_model()
    resolve(engine, model, "incremental")  # the first run is a full one
    before = _entities(engine)
    assert len(before) == 300 and len(set(before.values())) == 300

    # Five known people from another system: its own ids under an unmapped header.
    again = crm.head(5).drop("customer_id").with_columns(
        samples.pl.Series("Cust #", [f"K-{i}" for i in range(5)]))
    second = tmp_path / "other_system.csv"
    again.rename({k: v for k, v in samples.HEADER_STYLES["crm"].items()
                  if k in again.columns}).write_csv(second)
    (m,) = ingest_paths(engine, home, [second], processing=settings.processing)
    assert m.loaded == 5  # hash dedup cannot tell: only entity resolution can
    res = resolve(engine, model, "incremental")
    assert res.records_in == 5 and res.entities_merged_away == 0
    after = _entities(engine)
    assert {k: after[k] for k in before} == before  # every existing id kept
    new = [r for r in after if r not in before]
    golden = engine.query_rows(
        f"SELECT entity_id, cluster_size, agreement, match_probability"
        f" FROM {engine.database}.golden_records FINAL"
        f" WHERE is_deleted = 0 AND cluster_size = 2")
    assert len(golden) == 5 and {after[r] for r in new} == {g[0] for g in golden}
    assert all('"email":2' in g[2] for g in golden)  # both records agree on the e-mail
    assert all(0.99 <= g[3] <= 1.0 for g in golden)

    full = resolve(engine, model, "full")  # a full re-link keeps every id as well
    assert _entities(engine) == after and full.entities_merged_away == 0


def row_ids(engine, entity_id: str) -> list[str]:
    return [r for r, e in _entities(engine).items() if e == entity_id]


def _row(**kw) -> dict:
    return {"id": str(uuid.uuid4()), "record_hash": uuid.uuid4().hex, "source_file": "s.csv",
            "country": "GB", "status": "active", "user_id": "", "city": "Leeds",
            "metadata": '{"dob": "1980-02-03"}', "data_quality_score": 1.0,
            "validation_errors": [], "created_date": dt.date(2022, 1, 1),
            "ingested_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC), **kw}


def _insert(engine, rows: list[dict]) -> None:
    schema = pa.schema([
        ("id", pa.string()), ("record_hash", pa.string()), ("source_file", pa.string()),
        ("country", pa.string()), ("status", pa.string()), ("user_id", pa.string()),
        ("city", pa.string()), ("metadata", pa.string()), ("data_quality_score", pa.float32()),
        ("validation_errors", pa.list_(pa.string())), ("created_date", pa.date32()),
        ("ingested_at", pa.timestamp("ms", "UTC")), ("name", pa.string()),
        ("email", pa.string()), ("phone", pa.string()), ("address", pa.string())])
    engine.insert_arrow(f"{engine.database}.records", pa.Table.from_pylist(rows).cast(schema))


def test_merge_is_logged_and_the_absorbed_id_keeps_answering(engine, tmp_path: Path) -> None:
    a = _row(name="Maria Kowalska", email="maria.k@gmail.com", phone="+447700900111",
             address="1 Mill Lane")
    b = _row(name="Maria Kowalska", email="mkowalska@yahoo.com", phone="+447700900222",
             address="7 Park Road")
    engine.insert_arrow(f"{engine.database}.records",
                        to_records_table(generate_people(300, seed=13, dup_rate=0.0)))
    _insert(engine, [a, b])
    model = load_model()
    resolve(engine, model, "full")
    ent = _entities(engine)
    ea, eb = ent[a["id"]], ent[b["id"]]
    assert ea != eb
    _insert(engine, [_row(name="Maria Kowalska", email="maria.k@gmail.com",
                          phone="+447700900222", address="1 Mill Lane")])
    res = resolve(engine, model, "incremental")
    assert res.entities_merged_away == 1
    survivor, absorbed = min(ea, eb), max(ea, eb)
    history = engine.query_rows(
        f"SELECT entity_id, other_id, event, run_id, model_version"
        f" FROM {engine.database}.entity_history")
    assert history == [(absorbed, survivor, "merge", res.run_id, model.version)]
    assert current_entity_id(engine, absorbed) == survivor
    assert current_entity_id(engine, survivor) == survivor
    assert current_entity_id(engine, "no-such-entity") is None
    assert current_entity_ids(engine, [absorbed, "nope"]) == {absorbed: survivor}

    ledger = Ledger(sqlite_url(tmp_path))
    settings = api_settings(tmp_path / "home", engine.url, engine.database,
                            sqlite_url(tmp_path))
    app = create_app(settings, engine, config=ApiConfig(cache_ttl_s=0), ledger=ledger)
    try:
        with TestClient(app) as c:
            _, key = new_user(ledger, 100)
            r = c.post("/api/v1/query", headers={"X-API-Key": key}, json={
                "resolve": "entity", "filters": {"entity_id": absorbed},
                "fields": ["name", "email"]})
            assert r.status_code == 200, r.text
            (row,) = r.json()["data"]
            assert row["entity_id"] == survivor and row["cluster_size"] == 3
            assert 0.99 <= row["match_probability"] <= 1.0
            assert row["agreement"]["name"] == 3  # every record agrees on the name
            assert row["sources"]["email"] in row_ids(engine, survivor)
            merged = c.post("/api/v1/query", headers={"X-API-Key": key}, json={
                "resolve": "entity", "filters": {"cluster_size": {"gte": 2}}, "limit": 100})
            assert merged.status_code == 200, merged.text
            assert all(d["cluster_size"] >= 2 for d in merged.json()["data"])
            bad = c.post("/api/v1/query", headers={"X-API-Key": key}, json={
                "resolve": "entity", "filters": {"cluster_size": {"near": 2}}})
            assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_QUERY"
    finally:
        ledger.close()
