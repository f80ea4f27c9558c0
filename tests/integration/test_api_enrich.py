"""POST /api/v1/enrich and /enrich/bulk on records loaded by the real ingestion: a person is
found by an identifier written another way, costs 1 credit when found and nothing otherwise;
where entity resolution has run, the golden record answers."""

from __future__ import annotations

import csv

import pytest
from api_support import new_user
from litestar.testing import TestClient

from api.app import create_app
from api.config import ApiConfig
from creditlake.config import Processing
from creditlake.entity.ddl import migrate_entities
from creditlake.ingest.manifest import Status
from creditlake.ingest.pipeline import ingest_file

ROWS = [
    {"user_id": "en-1", "email": "ann.lee@example.com", "name": "Ann Lee",
     "phone": "+1 415 555 0123", "city": "Springfield", "country": "US", "status": "active"},
    {"user_id": "en-2", "email": "bob@example.co.uk", "name": "Bob Stone",
     "phone": "020 7946 0958", "city": "London", "country": "GB", "status": "active"},
    {"user_id": "en-3", "email": "carla@example.de", "name": "Carla Diaz",
     "phone": "030 1234567", "city": "Berlin", "country": "DE", "status": "pending"},
    # two different people with one name in one city: a name alone cannot tell them apart
    {"user_id": "en-4", "email": "j.smith1@example.com", "name": "John Smith",
     "phone": "", "city": "Paris", "country": "FR", "status": "active"},
    {"user_id": "en-5", "email": "j.smith2@example.com", "name": "John Smith",
     "phone": "", "city": "Paris", "country": "FR", "status": "active"},
]


@pytest.fixture
def loaded(settings, engine, tmp_path):
    path = tmp_path / "people.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(ROWS[0]))
        w.writeheader()
        w.writerows(ROWS)
    m = ingest_file(engine, settings.home, path, processing=Processing())
    assert m.status == Status.LOADED and m.loaded == len(ROWS)
    return engine


@pytest.fixture
def client(settings, loaded, ledger):
    with TestClient(create_app(settings, loaded, config=ApiConfig(cache_ttl_s=30),
                               ledger=ledger)) as c:
        yield c


def enrich(client, key, body, **headers):
    return client.post("/api/v1/enrich", json=body, headers={"X-API-Key": key, **headers})


def test_finds_a_person_by_a_differently_formatted_phone(client, ledger):
    user_id, key = new_user(ledger, 10)
    r = enrich(client, key, {"phone": "(415) 555-0123", "country": "USA"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["data"]["user_id"] == "en-1" and body["data"]["phone"] == "+14155550123"
    assert isinstance(body["data"]["metadata"], dict)
    assert body["match"]["matched_on"] == ["phone", "country"]
    assert body["match"]["source"] == "record" and body["match"]["candidates"] == 1
    assert body["match"]["confidence"] == pytest.approx(1 - 0.2 * 0.9)
    assert body["metadata"]["input_applied"] == {"phone": "+14155550123", "country": "US"}
    assert (body["metadata"]["credits_used"], body["metadata"]["credits_remaining"]) == (1, 9)
    assert (r.headers["X-Credits-Used"], r.headers["X-Credits-Remaining"]) == ("1", "9")
    assert ledger.balance(user_id) == 9
    # the national UK number, written internationally, finds the same person it produced
    r = enrich(client, key, {"phone": "+44 20 7946 0958"})
    assert r.json()["data"]["user_id"] == "en-2"
    r = enrich(client, key, {"email": "MAILTO:Ann.Lee@EXAMPLE.com", "name": "ann lee"})
    assert r.json()["data"]["user_id"] == "en-1"
    assert r.json()["match"]["matched_on"] == ["email", "name"]
    assert ledger.balance(user_id) == 7
    usage = client.get("/api/v1/usage", headers={"X-API-Key": key}).json()["data"]
    assert [u["credits_used"] for u in usage if u["endpoint"] == "/api/v1/enrich"] == [1, 1, 1]


def test_no_match_is_404_and_free(client, ledger):
    user_id, key = new_user(ledger, 3)
    for _ in range(2):  # the second answer comes from the cache: still free
        r = enrich(client, key, {"email": "nobody@example.org"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    assert ledger.balance(user_id) == 3 and ledger.ledger_totals(user_id)["debited"] == 0
    rows = ledger.usage(user_id)[0]
    assert [(u["status_code"], u["error_code"], u["credits_used"]) for u in rows] == [
        (404, "NOT_FOUND", 0)] * 2


@pytest.mark.parametrize(("body", "message"), [
    ({}, "give email, phone or user_id, or name with city or country"),
    ({"name": "Ann Lee"}, "give email, phone or user_id"),
    ({"city": "Paris", "country": "FR"}, "give email, phone or user_id"),
    ({"email": "   "}, "give email, phone or user_id"),
    ({"phone": "call me", "country": "US"}, "phone: cannot read 'call me'"),
    ({"name": "Ann Lee", "country": "Narnia"}, "country: cannot read 'Narnia'"),
    ({"email": 5}, ""),
    ({"email": "a@b.co", "shoe_size": 42}, ""),
])
def test_input_that_identifies_nobody_is_400_and_free(client, ledger, body, message):
    user_id, key = new_user(ledger, 3)
    r = enrich(client, key, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "INVALID_QUERY" and message in r.json()["error"][
        "message"]
    assert ledger.balance(user_id) == 3


def test_a_name_two_people_share_has_low_confidence(client, ledger):
    _, key = new_user(ledger, 3)
    r = enrich(client, key, {"name": "john  SMITH", "city": "paris"})
    assert r.status_code == 200
    match = r.json()["match"]
    assert match["candidates"] == 2 and match["matched_on"] == ["name", "city"]
    assert match["confidence"] == pytest.approx((1 - 0.5 * 0.8) / 2)


def test_insufficient_credits_and_idempotent_replay(client, ledger):
    user_id, key = new_user(ledger, 1)
    first = enrich(client, key, {"email": "carla@example.de"}, **{"Idempotency-Key": "k1"})
    again = enrich(client, key, {"email": "carla@example.de"}, **{"Idempotency-Key": "k1"})
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["X-Credits-Used"] == "1" and again.headers["X-Credits-Remaining"] == "0"
    other = enrich(client, key, {"email": "ann.lee@example.com"}, **{"Idempotency-Key": "k1"})
    assert other.status_code == 422 and other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    broke = enrich(client, key, {"email": "ann.lee@example.com"})
    assert broke.status_code == 402
    assert (broke.json()["error"]["required"], broke.json()["error"]["available"]) == (1, 0)
    assert ledger.ledger_totals(user_id)["debited"] == 1


def test_bulk_charges_per_person_found(client, ledger):
    user_id, key = new_user(ledger, 10)
    H = {"X-API-Key": key}
    r = client.post("/api/v1/enrich/bulk", headers=H, json={"requests": [
        {"email": "BOB@example.co.uk"}, {"email": "ghost@example.org"},
        {"phone": "030 1234567", "country": "Germany"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["status"] for i in body["data"]] == ["found", "not_found", "found"]
    assert [i["data"]["user_id"] for i in body["data"] if i["status"] == "found"] == [
        "en-2", "en-3"]
    assert body["data"][1]["input_applied"] == {"email": "ghost@example.org"}
    assert body["metadata"] | {"query_time_ms": 0} == {
        "requested": 3, "found": 2, "credits_used": 2, "credits_remaining": 8,
        "query_time_ms": 0}
    assert r.headers["X-Credits-Used"] == "2" and ledger.balance(user_id) == 8
    none = client.post("/api/v1/enrich/bulk", headers=H,
                       json={"requests": [{"email": "ghost@example.org"}]})
    assert none.status_code == 200 and none.json()["metadata"]["credits_used"] == 0
    assert none.headers["X-Credits-Used"] == "0" and ledger.balance(user_id) == 8
    bad = client.post("/api/v1/enrich/bulk", headers=H, json={"requests": [
        {"email": "bob@example.co.uk"}, {"city": "Paris"}]})
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("requests[1]: ")
    for requests in ([], [{"email": "a@b.co"}] * 101):
        r = client.post("/api/v1/enrich/bulk", headers=H, json={"requests": requests})
        assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_QUERY"
    assert ledger.balance(user_id) == 8


def test_golden_record_answers_where_entity_resolution_has_run(client, ledger, loaded):
    """Records en-4 and en-5 resolved into one entity (written as a resolution run writes
    them): enrich by either e-mail returns the entity's golden record."""
    db = loaded.database
    migrate_entities(loaded)
    ids = dict(loaded.query_rows(f"SELECT user_id, toString(id) FROM {db}.records"))
    loaded.command(
        f"INSERT INTO {db}.entities (record_id, entity_id, cluster_size, match_probability,"
        f" model_version, resolved_at) VALUES ('{ids['en-4']}', 'ent-js', 2, 0.97, 'test',"
        f" now64(3)), ('{ids['en-5']}', 'ent-js', 2, 0.97, 'test', now64(3))")
    loaded.command(
        f"INSERT INTO {db}.golden_records (entity_id, id, user_id, email, name, phone, address,"
        f" city, country, created_date, status, source_file, ingested_at, data_quality_score,"
        f" record_hash, metadata, validation_errors, cluster_size, record_ids, sources,"
        f" model_version, resolved_at, is_deleted) VALUES ('ent-js', '{ids['en-4']}', 'en-4',"
        f" 'j.smith1@example.com', 'John Smith', '', '', 'Paris', 'FR', NULL, 'active',"
        f" 'people.csv', now64(3), 0.9, 'h', '{{}}', [], 2, ['{ids['en-4']}', '{ids['en-5']}'],"
        f" '{{}}', 'test', now64(3), 0)")
    _, key = new_user(ledger, 5)
    r = enrich(client, key, {"email": "j.smith2@example.com"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["match"]["source"] == "entity" and body["match"]["entity_id"] == "ent-js"
    assert body["match"]["cluster_size"] == 2 and body["data"]["entity_id"] == "ent-js"
    assert body["data"]["email"] == "j.smith1@example.com"  # the golden value
    r = enrich(client, key, {"name": "John Smith", "city": "Paris"})
    assert r.json()["match"]["candidates"] == 1  # one entity now, not two people
    # an entity id returned earlier keeps working, also after it was absorbed in a merge
    r = enrich(client, key, {"entity_id": "ent-js"})
    assert r.status_code == 200 and r.json()["match"] == {
        "confidence": 1.0, "matched_on": ["entity_id"], "candidates": 1, "source": "entity",
        "entity_id": "ent-js", "cluster_size": 2}
    loaded.command(f"INSERT INTO {db}.entity_aliases (alias_id, current_id, run_id, resolved_at)"
                   f" VALUES ('ent-old', 'ent-js', 'r1', now64(3))")
    r = enrich(client, key, {"entity_id": "ent-old"})
    assert r.status_code == 200 and r.json()["data"]["entity_id"] == "ent-js"
    assert enrich(client, key, {"entity_id": "ent-never"}).status_code == 404
