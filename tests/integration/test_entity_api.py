"""POST /api/v1/query with "resolve": "entity": golden records with entity_id, charged on
what is returned, through the real app (Litestar test client, chDB, SQLite ledger)."""

from __future__ import annotations

import pytest
from api_support import api_settings, new_user, sqlite_url
from litestar.testing import TestClient

from api.app import create_app
from api.config import ApiConfig
from creditlake.entity.model import load_model
from creditlake.entity.resolve import resolve
from creditlake.entity.synthetic import generate_people, to_records_table
from creditlake.ledger import Ledger

pytestmark = pytest.mark.integration


@pytest.fixture
def client(engine, tmp_path):
    engine.insert_arrow(f"{engine.database}.records",
                        to_records_table(generate_people(600, seed=17)))
    resolve(engine, load_model(), "full")
    ledger = Ledger(sqlite_url(tmp_path))
    settings = api_settings(tmp_path / "home", engine.url, engine.database,
                            sqlite_url(tmp_path))
    app = create_app(settings, engine, config=ApiConfig(cache_ttl_s=0), ledger=ledger)
    with TestClient(app) as c:
        yield c, ledger
    ledger.close()


def test_resolve_entity_returns_golden_records(client, engine) -> None:
    c, ledger = client
    user_id, key = new_user(ledger, 100)
    headers = {"X-API-Key": key}
    raw = c.post("/api/v1/query", json={"limit": 1000, "fields": ["email"]}, headers=headers)
    assert raw.status_code == 200, raw.text
    assert raw.json()["metadata"]["total_records"] == 600

    r = c.post("/api/v1/query", headers=headers, json={
        "resolve": "entity", "limit": 1000, "fields": ["id", "name", "email", "country"],
        "sort": {"field": "name", "order": "asc"}})
    assert r.status_code == 200, r.text
    body = r.json()
    entities = engine.query_rows(
        f"SELECT count() FROM {engine.database}.golden_records FINAL WHERE is_deleted = 0")[0][0]
    meta = body["metadata"]
    assert meta["total_records"] == meta["returned"] == entities < 600
    assert meta["credits_used"] == 1 + entities // 100  # charged on golden rows returned
    row = body["data"][0]
    assert set(row) == {"id", "name", "email", "country", "entity_id", "cluster_size",
                        "match_probability", "sources", "agreement"}
    assert any(d["cluster_size"] > 1 for d in body["data"])
    assert len({d["entity_id"] for d in body["data"]}) == entities

    country = body["data"][0]["country"]
    f = c.post("/api/v1/query", headers=headers, json={
        "resolve": "entity", "filters": {"country": country}, "limit": 5})
    assert f.status_code == 200, f.text
    assert all(d["country"] == country for d in f.json()["data"])

    bad = c.post("/api/v1/query", headers=headers, json={"resolve": "people", "limit": 5})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_QUERY"


def test_resolve_entity_is_answered_while_an_entity_run_is_in_progress(client, engine,
                                                                        monkeypatch) -> None:
    """An incremental run holds no lock between its statements: paused after it has linked
    new records and written their entities (before the golden rows), the API still answers
    `resolve: entity` with the golden records as they were; afterwards with the new ones."""
    import threading

    import creditlake.entity.resolve as resolve_module

    c, ledger = client
    _, key = new_user(ledger, 100)
    headers = {"X-API-Key": key}
    body = {"resolve": "entity", "limit": 1000, "fields": ["id"]}
    before = c.post("/api/v1/query", json=body, headers=headers)
    assert before.status_code == 200, before.text
    engine.insert_arrow(f"{engine.database}.records",
                        to_records_table(generate_people(300, seed=18)))

    in_run, resume = threading.Event(), threading.Event()
    write_golden = resolve_module.write_golden

    def paused(*args, **kwargs):  # the real statement, once the query below was answered
        in_run.set()
        assert resume.wait(120)
        return write_golden(*args, **kwargs)

    monkeypatch.setattr(resolve_module, "write_golden", paused)
    results: list = []
    run = threading.Thread(target=lambda: results.append(
        resolve(engine, load_model(), "incremental")))
    run.start()
    try:
        assert in_run.wait(300), "the entity run did not reach its golden-record step"
        during = c.post("/api/v1/query", json=body, headers=headers)
    finally:
        resume.set()
        run.join(300)
    assert during.status_code == 200, during.text
    assert during.json()["data"] == before.json()["data"]  # the last complete state
    (res,) = results
    assert res.mode == "incremental" and res.records_in == 300
    after = c.post("/api/v1/query", json=body, headers=headers)
    assert after.json()["metadata"]["total_records"] == res.entities_total > len(
        before.json()["data"])
