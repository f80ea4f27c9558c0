"""Hostile input on every endpoint (no 5xx), dependencies down (503 + Retry-After, nothing
charged) and the ClickHouse circuit breaker's closed -> open -> half-open -> closed cycle
against a real engine that stops answering. Real chDB, SQLite/PostgreSQL ledgers."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time

import pytest
from api_support import (
    ADMIN_TOKEN,
    api_settings,
    new_user,
    pg_schema_url,
    seeded_database,
    sqlite_url,
)
from litestar.testing import TestClient

from api.app import create_app
from api.breaker import Breaker, CircuitState
from api.config import ApiConfig
from creditlake.clickhouse import ClickHouseEngine, EngineUnavailable
from creditlake.ledger import Ledger

pytestmark = pytest.mark.integration
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EDGE_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
              "0001-01-01T00:00:00", "9999-12-31T23:59:59.999999"]


@pytest.fixture(scope="module")
def seeded(chdb_path):
    with seeded_database(chdb_path, 300) as eng:
        yield eng


@pytest.fixture
def settings(tmp_path, chdb_path, seeded):
    return api_settings(tmp_path / "home", f"chdb://{chdb_path}", seeded.database,
                        sqlite_url(tmp_path))


@pytest.fixture
def client(settings, seeded, ledger):
    with TestClient(create_app(settings, seeded, config=ApiConfig(cache_ttl_s=0),
                               ledger=ledger)) as c:
        yield c


def no_5xx_but_503(r) -> None:
    assert r.status_code < 500 or r.status_code == 503, (r.status_code, r.text)
    assert r.json()["status"] in ("error", "success")


@pytest.mark.parametrize("when", EDGE_TIMES)
def test_edge_datetimes_are_400_naming_the_field(client, ledger, when):
    user_id, key = new_user(ledger, 100)
    h = {"X-API-Key": key}
    for path in ("/api/v1/query", "/api/v1/query/count"):
        for op in ("gt", "lt", "gte", "lte"):
            r = client.post(path, json={"filters": {"ingested_at": {op: when}}}, headers=h)
            no_5xx_but_503(r)
            if r.status_code == 400:
                assert "ingested_at" in r.json()["error"]["message"], r.text
                assert r.json()["error"]["code"] == "INVALID_QUERY"
    no_5xx_but_503(client.get("/api/v1/usage", params={"since": when}, headers=h))
    no_5xx_but_503(client.get("/api/v1/usage", params={"until": when}, headers=h))
    r = client.post(f"/api/v1/admin/users/{user_id}/credits",
                    json={"amount": 5, "expires_at": when}, headers=ADMIN)
    no_5xx_but_503(r)
    no_5xx_but_503(client.get(f"/api/v1/admin/users/{user_id}/usage", params={"since": when},
                              headers=ADMIN))
    assert ledger.balance(user_id) <= 105


def test_cursor_with_edge_keys_is_400(client, ledger):
    _, key = new_user(ledger, 100)
    body = {"sort": {"field": "ingested_at", "order": "asc"}, "limit": 5}
    r = client.post("/api/v1/query", json=body, headers={"X-API-Key": key})
    assert r.status_code == 200, r.text
    cursor = r.json()["metadata"]["next_cursor"]
    data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    for when in EDGE_TIMES:
        evil = {**data, "k": [when, *data["k"][1:]]}
        raw = base64.urlsafe_b64encode(json.dumps(evil).encode()).decode().rstrip("=")
        r = client.post("/api/v1/query", json={**body, "cursor": raw},
                        headers={"X-API-Key": key})
        no_5xx_but_503(r)
        assert r.status_code in (200, 400), r.text


@pytest.mark.parametrize("depth", [50_000, 100_000])
def test_deep_bodies_are_400_on_every_post(client, ledger, depth):
    user_id, key = new_user(ledger, 100)
    deep = b'{"filters": ' + b"[" * depth + b"]" * depth + b"}"
    for path, h in (("/api/v1/query", {"X-API-Key": key}),
                    ("/api/v1/query/count", {"X-API-Key": key}),
                    ("/api/v1/admin/users", ADMIN),
                    (f"/api/v1/admin/users/{user_id}/credits", ADMIN)):
        r = client.post(path, content=deep, headers={**h, "Content-Type": "application/json"})
        assert r.status_code == 400, (path, r.text)
        assert "nested" in r.json()["error"]["message"]
    assert ledger.balance(user_id) == 100


def test_invalid_utf8_and_oversized_bodies(client, ledger):
    _, key = new_user(ledger, 100)
    h = {"X-API-Key": key, "Content-Type": "application/json"}
    r = client.post("/api/v1/query", content=b'{"filters": {"name": "\xff\xfe"}}', headers=h)
    assert r.status_code == 400 and "UTF-8" in r.json()["error"]["message"]
    assert r.json()["error"]["code"] == "INVALID_QUERY"
    big = b'{"filters": {"name": "' + b"x" * (2 << 20) + b'"}}'
    r = client.post("/api/v1/query", content=big, headers=h)
    assert r.status_code == 413 and r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    # a string full of brackets is not deep: the exact check masks strings
    r = client.post("/api/v1/query", json={"filters": {"name": "[" * 900}, "limit": 1},
                    headers={"X-API-Key": key})
    assert r.status_code == 200, r.text


def test_ledger_down_is_503_retry_after_and_nothing_charged(postgres_url, settings, seeded):
    with pg_schema_url(postgres_url) as url:
        real = Ledger(url)
        user_id, key = new_user(real, 50)
        down = Ledger("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2",
                      migrate=False)
        try:
            with TestClient(create_app(settings, seeded, ledger=down)) as c:
                for path in ("/api/v1/query", "/api/v1/query/count"):
                    r = c.post(path, json={"limit": 5}, headers={"X-API-Key": key})
                    assert r.status_code == 503, r.text
                    assert r.headers["Retry-After"]
                    assert r.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
                    assert "ledger" in r.json()["error"]["message"]
                    assert "data" not in r.json()
                r = c.get("/api/v1/credits", headers={"X-API-Key": key})
                assert r.status_code == 503
                r = c.get(f"/api/v1/admin/users/{user_id}/balance", headers=ADMIN)
                assert r.status_code == 503
                assert c.get("/healthz").json()["ledger"].startswith("error")
            assert real.balance(user_id) == 50
        finally:
            down.close()
            real.close()


class SilentServer:
    """Accepts TCP connections and never answers: a ClickHouse that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def test_circuit_breaker_cycle_against_a_silent_engine(tmp_path, chdb_path, seeded, ledger):
    server = SilentServer()
    url = f"http://127.0.0.1:{server.port}/?send_receive_timeout=1&connect_timeout=1"
    settings = api_settings(tmp_path / "h2", url, seeded.database, sqlite_url(tmp_path))
    healthy = {"up": False}

    def provider():  # the silent server until "repaired", then the real engine
        if healthy["up"]:
            return ClickHouseEngine(f"chdb://{chdb_path}", seeded.database)
        return ClickHouseEngine(url, seeded.database)

    cfg = ApiConfig(cache_ttl_s=0, breaker_failures=2, breaker_reset_s=1.5,
                    engine_timeout_s=5)
    user_id, key = new_user(ledger, 100)
    h = {"X-API-Key": key}
    try:
        with TestClient(create_app(settings, provider, config=cfg, ledger=ledger)) as c:
            for _ in range(2):  # closed: each call tries the engine and fails
                r = c.post("/api/v1/query", json={"limit": 1}, headers=h)
                assert r.status_code == 503 and r.headers["Retry-After"], r.text
            assert c.get("/healthz").json()["circuit"] == "open"
            t0 = time.perf_counter()
            r = c.post("/api/v1/query", json={"limit": 1}, headers=h)
            assert r.status_code == 503 and "circuit open" in r.json()["error"]["message"]
            assert time.perf_counter() - t0 < 0.5  # fails fast, the engine is not tried
            assert 'creditlake_engine_circuit_state{state="open"} 1.0' in c.get(
                "/metrics").text
            time.sleep(1.6)  # half-open: one probe goes through, fails, opens again
            r = c.post("/api/v1/query", json={"limit": 1}, headers=h)
            assert r.status_code == 503 and "circuit" not in r.json()["error"]["message"]
            assert c.get("/healthz").json()["circuit"] == "open"
            healthy["up"] = True
            time.sleep(1.6)
            r = c.post("/api/v1/query", json={"limit": 1}, headers=h)  # the probe succeeds
            assert r.status_code == 200, r.text
            health = c.get("/healthz").json()
            assert health["circuit"] == "closed" and health["clickhouse"] == "ok"
            assert 'creditlake_engine_circuit_state{state="closed"} 1.0' in c.get(
                "/metrics").text
    finally:
        server.close()
    assert ledger.balance(user_id) == 100 - 1  # only the answered query was charged


def test_breaker_states_with_a_clock():
    now = [0.0]
    seen: list[str] = []
    b = Breaker(failure_threshold=3, reset_after_s=10, clock=lambda: now[0],
                on_change=seen.append)
    for _ in range(3):
        b.admit()
        b.failure()
    assert b.state == CircuitState.OPEN and b.retry_after_s() == 10
    with pytest.raises(Exception, match="circuit open"):
        b.admit()
    now[0] = 10.0
    b.admit()
    assert b.state == CircuitState.HALF_OPEN
    with pytest.raises(Exception, match="probe running"):
        b.admit()
    b.success()
    assert b.state == CircuitState.CLOSED and seen == ["open", "half_open", "closed"]


def test_engine_password_never_in_answers_or_logs(tmp_path, seeded, ledger, capfd):
    """An unreachable ClickHouse whose URL carries a password: the 503, the /healthz answer and
    the API's log of the failure (traceback included) show *** instead."""
    url = "http://default:s3cret-pw@127.0.0.1:1/?connect_timeout=1"
    settings = api_settings(tmp_path / "h3", url, seeded.database, sqlite_url(tmp_path))
    with pytest.raises(EngineUnavailable) as info:
        ClickHouseEngine(url, seeded.database)
    assert "s3cret-pw" not in str(info.value) and "default:***@127.0.0.1" in str(info.value)
    _, key = new_user(ledger, 100)
    with TestClient(create_app(
            settings, lambda: ClickHouseEngine(url, seeded.database),
            config=ApiConfig(cache_ttl_s=0), ledger=ledger)) as c:
        r = c.post("/api/v1/query", json={"limit": 1}, headers={"X-API-Key": key})
        health = c.get("/healthz").text
    assert r.status_code == 503 and r.headers["Retry-After"], r.text
    logged = capfd.readouterr().err  # the app's logging config writes to stderr
    assert "request failed: POST /api/v1/query" in logged
    assert "cannot reach ClickHouse at http://default:***@127.0.0.1:1" in logged, logged
    assert "s3cret-pw" not in r.text + health + logged
