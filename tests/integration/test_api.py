"""The Credit API end to end on real chDB + SQLite ledger, through Litestar's test client."""

from __future__ import annotations

import asyncio
import json

import pytest
from api_support import (
    ADMIN_TOKEN,
    api_settings,
    new_user,
    seed_records,
    seeded_database,
    sqlite_url,
)
from litestar.testing import AsyncTestClient, TestClient

from api.app import create_app
from api.config import ApiConfig
from creditlake.clickhouse import ClickHouseEngine, EngineUnavailable
from creditlake.ledger import Ledger

N = 1000
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SUCCESS_META = {"total_records", "returned", "page", "credits_used", "credits_remaining",
                "filters_applied",
                "query_time_ms", "next_cursor"}


@pytest.fixture(scope="module")
def seeded(chdb_path):
    with seeded_database(chdb_path, N) as eng:
        yield eng


@pytest.fixture
def settings(tmp_path, chdb_path, seeded):  # no per-test database: the module's seeded one
    return api_settings(tmp_path / "home", f"chdb://{chdb_path}", seeded.database,
                        sqlite_url(tmp_path))


@pytest.fixture
def app(settings, seeded, ledger):
    return create_app(settings, seeded, config=ApiConfig(cache_ttl_s=0), ledger=ledger)


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


def q(client, key, body, **headers):
    return client.post("/api/v1/query", json=body, headers={"X-API-Key": key, **headers})


def usage_rows(ledger, user_id):
    return ledger.usage(user_id, limit=1000)[0]


@pytest.mark.parametrize(("limit", "cost"), [(99, 1), (100, 2), (1000, 11)])
def test_success_envelope_and_credit_formula(client, ledger, limit, cost):
    user_id, key = new_user(ledger, 100)
    r = q(client, key, {"limit": limit, "fields": ["email", "country"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"status", "data", "metadata"} and body["status"] == "success"
    meta = body["metadata"]
    assert set(meta) == SUCCESS_META
    assert meta["returned"] == len(body["data"]) == limit and meta["total_records"] == N
    assert meta["credits_used"] == cost and meta["credits_remaining"] == 100 - cost
    assert set(body["data"][0]) == {"email", "country"}
    assert r.headers["X-Credits-Used"] == str(cost)
    assert r.headers["X-Credits-Remaining"] == str(100 - cost)
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(r.headers)
    assert ledger.balance(user_id) == 100 - cost
    (row,) = usage_rows(ledger, user_id)
    assert (row["status_code"], row["credits_used"], row["records_returned"]) == (200, cost, limit)


def test_zero_rows_cost_one(client, ledger):
    user_id, key = new_user(ledger, 3)
    r = q(client, key, {"filters": {"country": "JP"}})  # a country with no records
    assert r.status_code == 200 and r.json()["data"] == []
    assert r.json()["metadata"]["credits_used"] == 1 and ledger.balance(user_id) == 2


def test_insufficient_credits_exact_body_and_no_charge(client, ledger):
    user_id, key = new_user(ledger, 5)
    r = q(client, key, {"limit": 900})  # 900 rows -> 10 credits
    assert r.status_code == 402
    # the specification's envelope and message, exactly, plus the numbers for programs
    assert r.content == (b'{"status":"error","error":{"code":"INSUFFICIENT_CREDITS",'
                         b'"message":"Insufficient credits. Required: 10, Available: 5",'
                         b'"required":10,"available":5}}')
    assert ledger.balance(user_id) == 5
    assert ledger.ledger_totals(user_id)["debited"] == 0
    (row,) = usage_rows(ledger, user_id)
    assert (row["status_code"], row["credits_used"], row["error_code"]) == (
        402, 0, "INSUFFICIENT_CREDITS")
    assert q(client, key, {"limit": 400}).status_code == 200  # 5 credits: exactly enough
    assert ledger.balance(user_id) == 0


def test_every_request_lands_in_usage_logs(client, ledger):
    user_id, key = new_user(ledger, 100)
    H = {"X-API-Key": key}
    statuses = [
        q(client, key, {"limit": 10}).status_code,
        q(client, key, {"filters": {"nope": 1}}).status_code,
        q(client, key, {"limit": "many"}).status_code,
        client.post("/api/v1/query/count", json={}, headers=H).status_code,
        client.get("/api/v1/credits", headers=H).status_code,
        client.get("/api/v1/usage", headers=H).status_code,
    ]
    assert statuses == [200, 400, 400, 200, 200, 200]
    q(client, "sk_live_unknown", {})  # anonymous failures are logged without a user
    rows = usage_rows(ledger, user_id)
    assert sorted((r["endpoint"], r["status_code"]) for r in rows) == sorted([
        ("/api/v1/query", 200), ("/api/v1/query", 400), ("/api/v1/query", 400),
        ("/api/v1/query/count", 200), ("/api/v1/credits", 200), ("/api/v1/usage", 200)])
    assert {r["error_code"] for r in rows if r["status_code"] == 400} == {"INVALID_QUERY"}
    assert all(r["response_time_ms"] > 0 for r in rows)
    with ledger.engine.connect() as conn:
        import sqlalchemy as sa
        anon = conn.execute(sa.text("select status_code, error_code from api_usage_logs "
                                    "where user_id is null")).all()
    assert [tuple(a) for a in anon] == [(401, "INVALID_API_KEY")]


def test_usage_endpoint_pages_and_totals(client, ledger):
    user_id, key = new_user(ledger, 100)
    for limit in (100, 200):
        q(client, key, {"limit": limit})
    r = client.get("/api/v1/usage", params={"limit": 1}, headers={"X-API-Key": key})
    body = r.json()
    assert len(body["data"]) == 1 and body["metadata"]["totals"]["requests"] == 2
    assert body["metadata"]["totals"]["credits_used"] == 5
    assert body["metadata"]["totals"]["records_returned"] == 300
    r = client.get("/api/v1/usage", params={"since": "2999-01-01"}, headers={"X-API-Key": key})
    assert r.json()["metadata"]["totals"]["requests"] == 0
    r = client.get("/api/v1/usage", params={"since": "last tuesday"}, headers={"X-API-Key": key})
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_REQUEST"


def test_credits_endpoint_lists_grants(client, ledger):
    user_id, key = new_user(ledger, 10)
    ledger.add_credits(user_id, 7, expires_at="2099-01-01", reason="promo")
    body = client.get("/api/v1/credits", headers={"X-API-Key": key}).json()
    assert body["data"]["balance"] == 17
    assert [(g["reason"], g["remaining"], g["expires_at"]) for g in body["data"]["grants"]] == [
        ("promo", 7, "2099-01-01T00:00:00Z"), ("signup", 10, None)]


def test_count_prices_the_query_exactly(client, ledger):
    user_id, key = new_user(ledger, 100)
    for body in ({"limit": 150}, {"filters": {"country": "US"}, "limit": 1000},
                 {"filters": {"country": "US"}, "limit": 100, "offset": 150}):
        price = client.post("/api/v1/query/count", json=body, headers={"X-API-Key": key}).json()
        before = ledger.balance(user_id)
        paid = q(client, key, body).json()["metadata"]
        assert price["data"]["credits_required"] == paid["credits_used"]
        assert price["data"]["total_records"] == paid["total_records"]
        assert price["data"]["would_return"] == paid["returned"]
        assert price["data"]["credits_available"] == before
        assert before - ledger.balance(user_id) == paid["credits_used"]


def test_key_revoked_elsewhere_stops_paid_calls_at_once_and_free_ones_within_the_ttl(
        settings, seeded, ledger):
    """The API trusts a checked key for key_cache_s; a revocation it did not see (CLI, another
    instance) still refuses the next paid call (the debit re-checks the key) and the free
    endpoints once the TTL has passed. Nothing is charged for the refused call."""
    import time

    app = create_app(settings, seeded, config=ApiConfig(cache_ttl_s=0, key_cache_s=1.0),
                     ledger=ledger)
    other_process = Ledger(settings.database_url, migrate=False)
    user_id, key = new_user(ledger, 100)
    with TestClient(app) as client:
        assert client.get("/api/v1/credits", headers={"X-API-Key": key}).status_code == 200
        other_process.revoke_key(key)
        revoked_at = time.monotonic()
        r = q(client, key, {"limit": 5})  # the key is cached: the debit refuses it
        assert r.status_code == 401 and r.json()["error"]["code"] == "API_KEY_REVOKED"
        assert ledger.balance(user_id) == 100
        logged = usage_rows(ledger, user_id)[0]
        assert (logged["status_code"], logged["credits_used"]) == (401, 0)
        time.sleep(max(0.0, revoked_at + 1.05 - time.monotonic()))
        r = client.get("/api/v1/credits", headers={"X-API-Key": key})
        assert r.status_code == 401 and r.json()["error"]["code"] == "API_KEY_REVOKED"
    other_process.close()


def test_revoked_key_fails_at_once(client, ledger):
    user_id, key = new_user(ledger, 100)
    assert q(client, key, {"limit": 1}).status_code == 200
    key_id = ledger.authenticate(key).id
    r = client.post(f"/api/v1/admin/keys/{key_id}/revoke", headers=ADMIN)
    assert r.status_code == 200 and r.json()["data"]["revoked_at"]
    r = q(client, key, {"limit": 1})
    assert r.status_code == 401
    assert r.json() == {"status": "error", "error": {"code": "API_KEY_REVOKED",
                                                     "message": "API key has been revoked"}}
    assert client.get("/api/v1/credits", headers={"X-API-Key": key}).status_code == 401
    missing = client.post("/api/v1/query", json={})
    assert missing.status_code == 401 and missing.json()["error"] == {
        "code": "MISSING_API_KEY", "message": "Missing API key: send it in the X-API-Key header"}
    assert q(client, "", {}).json()["error"]["code"] == "MISSING_API_KEY"
    for unknown in ("sk_live_nope", "not-even-a-key"):
        r = q(client, unknown, {})
        assert r.status_code == 401 and r.json()["error"]["code"] == "INVALID_API_KEY"
    assert ledger.balance(user_id) == 99


def test_idempotent_retry_returns_first_answer_and_charges_once(client, ledger):
    user_id, key = new_user(ledger, 100)
    body = {"filters": {"country": "DE"}, "limit": 150}
    first = q(client, key, body, **{"Idempotency-Key": "order-42"})
    again = q(client, key, body, **{"Idempotency-Key": "order-42"})
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    # the replay says what the original cost and left, not what it costs now (nothing)
    assert (again.headers["X-Credits-Used"], again.headers["X-Credits-Remaining"]) == (
        first.headers["X-Credits-Used"], first.headers["X-Credits-Remaining"]) == ("2", "98")
    assert again.headers["X-Request-Id"] != first.headers["X-Request-Id"]
    assert ledger.balance(user_id) == 98
    other = q(client, key, {"limit": 1}, **{"Idempotency-Key": "order-42"})
    assert other.status_code == 422 and other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert ledger.balance(user_id) == 98  # a refused reuse costs nothing
    # Keys are per user: another customer may use the same key string.
    user2, key2 = new_user(ledger, 100)
    assert q(client, key2, body, **{"Idempotency-Key": "order-42"}).status_code == 200
    assert ledger.balance(user2) == 98 and ledger.balance(user_id) == 98


def test_concurrent_retries_with_one_idempotency_key_charge_once(app, ledger):
    user_id, key = new_user(ledger, 100)
    body = {"filters": {"country": "FR"}, "limit": 120}

    async def main():
        async with AsyncTestClient(app) as c:
            return await asyncio.gather(*[
                c.post("/api/v1/query", json=body,
                       headers={"X-API-Key": key, "Idempotency-Key": "same"})
                for _ in range(12)])

    responses = asyncio.run(main())
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert ledger.balance(user_id) == 98 and ledger.ledger_totals(user_id)["debited"] == 2


def test_cursor_pagination_via_api(client, ledger):
    user_id, key = new_user(ledger, 1000)
    body = {"filters": {"status": ["active", "pending"]},
            "sort": {"field": "created_date", "order": "desc"}, "fields": ["id", "created_date"]}
    full = q(client, key, {**body, "limit": 10000}).json()
    seen, cursor, pages, spent = [], None, 0, full["metadata"]["credits_used"]
    while True:
        r = q(client, key, {**body, "limit": 90, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        pages += 1
        assert page["metadata"]["page"] == pages
        assert page["metadata"]["total_records"] == full["metadata"]["total_records"]
        spent += page["metadata"]["credits_used"]
        seen += page["data"]
        cursor = page["metadata"]["next_cursor"]
        if cursor is None:
            break
    assert seen == full["data"] and pages == -(-len(full["data"]) // 90)
    assert ledger.balance(user_id) == 1000 - spent
    r = q(client, key, {"limit": 5, "cursor": "bm9wZQ"})
    assert r.status_code == 400 and "cursor" in r.json()["error"]["message"]


def test_a_large_page_keeps_the_response_shape(client, ledger, seeded):
    """999 rows of every field (the engine writes the rows' JSON): the exact rows, field order
    and JSON types the records hold, then the last row on the cursor page; charged exactly."""
    import numpy as np

    from creditlake.query.fields import DEFAULT_FIELDS

    cols = ("toString(id), source_file, record_hash, ingested_at, user_id, email, name, phone, "
            "address, city, country, created_date, status, metadata, data_quality_score, "
            "validation_errors")
    raw = seeded.query_rows(f"SELECT {cols} FROM {seeded.database}.records")
    expected = sorted(({
        "id": r[0], "source_file": r[1], "record_hash": r[2],
        "ingested_at": r[3].strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "user_id": r[4], "email": r[5],
        "name": r[6], "phone": r[7], "address": r[8], "city": r[9], "country": r[10],
        "created_date": r[11].isoformat() if r[11] else None, "status": r[12],
        "data_quality_score": float(str(np.float32(r[14]))), "validation_errors": list(r[15]),
        "metadata": json.loads(r[13])} for r in raw), key=lambda x: x["user_id"], reverse=True)
    assert len(expected) == N
    user_id, key = new_user(ledger, 100)
    body = {"sort": {"field": "user_id", "order": "desc"}, "limit": N - 1}
    r = q(client, key, body)
    assert r.status_code == 200, r.text
    page = json.loads(r.content)
    assert list(page) == ["status", "data", "metadata"] and page["status"] == "success"
    meta = page["metadata"]
    assert (meta["returned"], meta["total_records"], meta["credits_used"], meta["page"]) == (
        N - 1, N, 1 + (N - 1) // 100, 1)
    assert r.headers["X-Credits-Used"] == str(1 + (N - 1) // 100)
    order = [f for f in DEFAULT_FIELDS if f != "metadata"] + ["metadata"]
    assert all(list(row) == order for row in page["data"])
    assert page["data"] == expected[:N - 1]
    assert all(isinstance(row["data_quality_score"], float) for row in page["data"])
    r2 = q(client, key, {**body, "cursor": meta["next_cursor"]})
    last = r2.json()
    assert last["data"] == expected[N - 1:] and last["metadata"]["next_cursor"] is None
    assert (last["metadata"]["total_records"], last["metadata"]["credits_used"]) == (N, 1)
    assert ledger.balance(user_id) == 100 - (1 + (N - 1) // 100) - 1
    assert sorted(row["records_returned"] for row in usage_rows(ledger, user_id)) == [1, N - 1]


# Every field/operator is covered at compile level (tests/unit/test_query_compiler.py); over
# HTTP two classics go through every entry point.
INJECTIONS = ["US'); DROP TABLE records; --", "{p0:String}) OR (1=1"]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_attempts_over_http(client, ledger, seeded, evil):
    _, key = new_user(ledger, 1000)
    for body in ({"filters": {evil: "x"}}, {"fields": [evil]}, {"sort": {"field": evil}},
                 {"sort": {"field": "email", "order": evil}}, {"filters": {"email": {evil: "x"}}},
                 {"filters": {"created_date": evil}}, {"filters": {"data_quality_score": evil}},
                 {"filters": {"id": evil}}, {"cursor": evil}):
        r = q(client, key, body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["code"] == "INVALID_QUERY"
    for field in ("email", "country", "status", "name", "city", "user_id", "metadata"):
        for cond in (evil, [evil], {"contains": evil}, {"prefix": evil}):
            r = q(client, key, {"filters": {field: cond}, "limit": 1})
            if r.status_code == 400:  # not a country or status: refused before any SQL
                assert field in ("country", "status") and not isinstance(cond, dict)
                assert r.json()["error"]["code"] == "INVALID_QUERY"
                assert f"{field}: cannot read {evil!r}" in r.json()["error"]["message"]
                continue
            assert r.status_code == 200 and r.json()["metadata"]["total_records"] == 0
    assert seeded.query_rows(f"SELECT count() FROM {seeded.database}.records")[0][0] == N


def test_engine_unavailable_is_503_and_free(settings, ledger):
    def provider():
        raise EngineUnavailable("locked by another process")

    app = create_app(settings, provider,
                     ledger=ledger)
    user_id, key = new_user(ledger, 10)
    with TestClient(app) as c:
        r = q(c, key, {"limit": 5})
        assert r.status_code == 503 and r.headers["Retry-After"] == "5"
        assert r.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert c.get("/healthz").status_code == 503
    assert ledger.balance(user_id) == 10
    (row,) = usage_rows(ledger, user_id)
    assert (row["status_code"], row["credits_used"]) == (503, 0)


class ReaderPoolEngine(ClickHouseEngine):
    """The real engine declaring three readers, as the embedded engine's owner does: the API
    then runs a page's count next to it (calls still take turns on this handle's lock)."""

    read_parallelism = 3


@pytest.mark.parametrize(("filters", "total"), [
    ({}, N),  # a full page: the count runs next to it and gives total_records
    ({"country": "US", "status": "active"}, N // 20),  # the same with filters
    ({"email": "user7@example.com"}, 1),  # the page is the whole result: the count is dropped
    ({"email": "nobody@example.com"}, 0),  # no rows at all
])
def test_count_next_to_the_page_gives_the_same_answer(settings, seeded, ledger, filters,
                                                      total):
    parallel = ReaderPoolEngine(seeded.url, seeded.database)
    user_id, key = new_user(ledger, 1000)
    answers = []
    for provider in (seeded, parallel):
        app = create_app(settings, provider, config=ApiConfig(cache_ttl_s=0), ledger=ledger)
        with TestClient(app) as c:
            r = q(c, key, {"filters": filters, "limit": 20, "fields": ["email"]})
            assert r.status_code == 200, r.text
            answers.append((r.json()["data"], r.json()["metadata"]["total_records"],
                            r.json()["metadata"]["next_cursor"] is not None))
    parallel.close()
    assert answers[0] == answers[1] and answers[0][1] == total


def test_a_failing_count_next_to_the_page_is_503_and_free(settings, engine, ledger):
    """The count fails while the page is fine: the request fails as a whole, nothing charged."""
    seed_records(engine, 50)

    class BrokenCount(ReaderPoolEngine):
        def query_rows(self, sql, parameters=None, settings=None):  # noqa: ANN001, ANN202
            return super().query_rows(sql.replace(".records", ".gone_missing"), parameters,
                                      settings)

    broken = BrokenCount(engine.url, engine.database)
    app = create_app(settings, broken, config=ApiConfig(cache_ttl_s=0), ledger=ledger)
    user_id, key = new_user(ledger, 10)
    with TestClient(app) as c:
        r = q(c, key, {"limit": 5})
    broken.close()
    assert r.status_code == 503 and ledger.balance(user_id) == 10


def test_failed_query_is_not_charged(settings, engine, ledger):
    engine.command(f"DROP TABLE {engine.database}.records")  # ClickHouse error at query time
    app = create_app(settings, engine,
                     config=ApiConfig(ensure_schema=False, cache_ttl_s=0), ledger=ledger)
    user_id, key = new_user(ledger, 10)
    with TestClient(app) as c:
        r = q(c, key, {"limit": 5})
    assert r.status_code == 503 and r.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert r.headers["Retry-After"]
    assert ledger.balance(user_id) == 10
    assert usage_rows(ledger, user_id)[0]["status_code"] == 503


def test_engine_opened_lazily(settings, seeded, ledger, chdb_path):
    calls = []

    def provider():  # the app owns (and closes) what a callable provider returns
        calls.append(1)
        return ClickHouseEngine(f"chdb://{chdb_path}", seeded.database)

    app = create_app(settings, provider,
                     ledger=ledger)
    _, key = new_user(ledger, 10)
    with TestClient(app) as c:
        assert calls == [] and c.get("/api/v1/credits", headers={"X-API-Key": key}).is_success
        assert calls == []
        assert q(c, key, {"limit": 1}).status_code == 200 and calls == [1]
        assert q(c, key, {"limit": 2}).status_code == 200 and calls == [1]


def test_health_metrics_and_docs(client, ledger):
    _, key = new_user(ledger, 100)
    q(client, key, {"limit": 250})
    assert client.get("/healthz").json() == {"status": "ok", "clickhouse": "ok", "ledger": "ok",
                                              "circuit": "closed"}
    text = client.get("/metrics").text
    assert "creditlake_credits_consumed_total 3.0" in text
    assert 'creditlake_queries_total{outcome="success"} 1.0' in text
    assert 'creditlake_api_request_seconds_count{endpoint="/api/v1/query",method="POST",' \
           'status="200"} 1.0' in text
    doc = client.get("/docs/openapi.json").json()
    assert {"/api/v1/query", "/api/v1/query/count", "/api/v1/credits", "/api/v1/usage",
            "/healthz", "/metrics", "/api/v1/admin/users"} <= set(doc["paths"])
    assert "402" in doc["paths"]["/api/v1/query"]["post"]["responses"]
    page = client.get("/docs/")
    assert page.status_code == 200 and "swagger" in page.text.lower()


def test_unknown_route_and_method(client):
    r = client.get("/api/v1/nothing")
    assert r.status_code == 404 and r.json()["status"] == "error"
    assert client.get("/api/v1/query").status_code == 405


def test_body_errors_use_the_envelope(client, ledger):
    _, key = new_user(ledger, 10)
    r = client.post("/api/v1/query", content=b"{not json", headers={
        "X-API-Key": key, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_QUERY"
    r = q(client, key, {"limit": 10001})
    assert r.status_code == 400 and "limit" in json.dumps(r.json())


def test_every_response_has_a_request_id_found_in_the_usage_log(client, ledger):
    user_id, key = new_user(ledger, 10)
    H = {"X-API-Key": key}
    responses = [q(client, key, {"limit": 1}), q(client, key, {"filters": {"nope": 1}}),
                 client.get("/api/v1/credits", headers=H), client.get("/healthz"),
                 client.post("/api/v1/query", json={}), client.get("/no/such/path")]
    ids = [r.headers.get("X-Request-Id") for r in responses]
    assert all(i and len(i) == 32 for i in ids) and len(set(ids)) == len(ids)
    usage = client.get("/api/v1/usage", headers=H).json()["data"]
    logged = {u["request_id"]: (u["endpoint"], u["status_code"]) for u in usage}
    assert logged[ids[0]] == ("/api/v1/query", 200)  # written in the debit transaction
    assert logged[ids[1]] == ("/api/v1/query", 400)
    assert logged[ids[2]] == ("/api/v1/credits", 200)
