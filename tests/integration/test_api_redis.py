"""Rate limits and the result cache through a real Redis: shared by two app instances,
local fallback (with a warning) while Redis is down, cached answers still charged."""

from __future__ import annotations

import logging
import uuid

import pytest
import redis
from api_support import api_settings, new_user, seeded_database, sqlite_url
from litestar.testing import TestClient

from api.app import create_app
from api.config import ApiConfig

N = 300


@pytest.fixture(scope="module")
def seeded(chdb_path):
    with seeded_database(chdb_path, N) as eng:
        yield eng


@pytest.fixture
def prefix(redis_url):
    p = f"cltest:{uuid.uuid4().hex[:10]}"
    yield p
    r = redis.Redis.from_url(redis_url)
    for k in r.scan_iter(f"{p}:*"):
        r.delete(k)


def make_app(tmp_path, chdb_path, seeded, ledger, redis_url, **cfg):
    settings = api_settings(tmp_path / "home", f"chdb://{chdb_path}", seeded.database,
                            sqlite_url(tmp_path), redis_url)
    return create_app(settings, seeded, config=ApiConfig(**cfg), ledger=ledger)


def test_rate_limit_shared_by_two_instances(tmp_path, chdb_path, seeded, ledger, redis_url,
                                            prefix):
    cfg = {"rate_limit": 5, "rate_window_s": 60, "redis_prefix": prefix, "cache_ttl_s": 0}
    a = make_app(tmp_path, chdb_path, seeded, ledger, redis_url, **cfg)
    b = make_app(tmp_path, chdb_path, seeded, ledger, redis_url, **cfg)
    user_id, key = new_user(ledger, 100)
    _, other_key = new_user(ledger, 100)
    H = {"X-API-Key": key}
    with TestClient(a) as ca, TestClient(b) as cb:
        seen = []
        for i in range(5):  # alternate instances: one budget of 5 for the key
            r = (ca if i % 2 else cb).post("/api/v1/query", json={"limit": 1}, headers=H)
            assert r.status_code == 200, r.text
            seen.append(int(r.headers["X-RateLimit-Remaining"]))
        assert seen == [4, 3, 2, 1, 0]
        for c in (ca, cb):
            r = c.post("/api/v1/query", json={"limit": 1}, headers=H)
            assert r.status_code == 429
            assert r.json()["error"]["code"] == "RATE_LIMITED"
            assert 1 <= int(r.headers["Retry-After"]) <= 60
            assert r.headers["X-RateLimit-Limit"] == "5"
            assert r.headers["X-RateLimit-Remaining"] == "0"
        # other keys have their own budget; rejected requests cost nothing
        assert ca.post("/api/v1/query", json={"limit": 1},
                       headers={"X-API-Key": other_key}).status_code == 200
    assert ledger.balance(user_id) == 95
    rows = ledger.usage(user_id)[0]
    assert sorted(r["status_code"] for r in rows) == [200] * 5 + [429] * 2


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_redis_down_falls_back_to_local_limits(tmp_path, chdb_path, seeded, ledger):
    app = make_app(tmp_path, chdb_path, seeded, ledger, "redis://127.0.0.1:1/0",
                   rate_limit=3, rate_window_s=60, cache_ttl_s=30)
    _, key = new_user(ledger, 100)
    seen = _Collect()
    logging.getLogger("api.ratelimit").addHandler(seen)  # Litestar reconfigures root logging
    try:
        with TestClient(app) as c:
            codes = [c.post("/api/v1/query", json={"limit": 1}, headers={"X-API-Key": key}
                            ).status_code for _ in range(4)]
            limiter = app.state.runtime.limiter
            assert not limiter.using_redis  # in fallback now, retried after redis_retry_s
    finally:
        logging.getLogger("api.ratelimit").removeHandler(seen)
    assert codes == [200, 200, 200, 429]  # still serving, still limited
    assert any("Redis unavailable for rate limiting" in m for m in seen.messages)


def test_cached_answers_are_still_charged(tmp_path, chdb_path, seeded, ledger, redis_url,
                                          prefix):
    app = make_app(tmp_path, chdb_path, seeded, ledger, redis_url, redis_prefix=prefix,
                   cache_ttl_s=30)
    user_id, key = new_user(ledger, 100)
    body = {"filters": {"country": "US"}, "limit": 100}
    with TestClient(app) as c:
        first = c.post("/api/v1/query", json=body, headers={"X-API-Key": key}).json()
        second = c.post("/api/v1/query", json=body, headers={"X-API-Key": key}).json()
        metrics = c.get("/metrics").text
    assert first["data"] == second["data"] and len(first["data"]) == 60
    assert second["metadata"]["credits_used"] == 1 and ledger.balance(user_id) == 98
    assert second["metadata"]["credits_remaining"] == 98
    assert 'creditlake_queries_total{outcome="cache_hit"} 1.0' in metrics
    assert list(redis.Redis.from_url(redis_url).scan_iter(f"{prefix}:qc:*"))


def test_limiter_returns_to_redis_after_an_outage(redis_url, prefix):
    import asyncio
    import time

    import redis.asyncio as aioredis

    from api.ratelimit import RateLimiter

    async def main():
        client = aioredis.Redis.from_url(redis_url)
        limiter = RateLimiter(client, 10, 60, prefix, retry_s=0.2)
        limiter._redis_down_until = time.monotonic() + 0.2  # as after a failed call
        local = await limiter.hit("k")
        await asyncio.sleep(0.25)
        shared = await limiter.hit("k")
        n = await client.zcard(f"{prefix}:rl:k")
        await client.aclose()
        return local, shared, n

    local, shared, n = asyncio.run(main())
    assert local.allowed and shared.allowed and n == 1  # second hit went to Redis


def test_cursor_walk_reuses_the_cached_count(tmp_path, chdb_path, seeded, ledger, redis_url,
                                             prefix):
    app = make_app(tmp_path, chdb_path, seeded, ledger, redis_url, redis_prefix=prefix,
                   cache_ttl_s=30)
    _, key = new_user(ledger, 1000)
    body = {"filters": {"status": "active"}, "sort": {"field": "email"}, "limit": 20,
            "fields": ["email"]}
    totals, emails, cursor = set(), [], None
    with TestClient(app) as c:
        while True:
            r = c.post("/api/v1/query", json={**body, **({"cursor": cursor} if cursor else {})},
                       headers={"X-API-Key": key}).json()
            totals.add(r["metadata"]["total_records"])
            emails += [x["email"] for x in r["data"]]
            cursor = r["metadata"]["next_cursor"]
            if cursor is None:
                break
        metrics = c.get("/metrics").text
    assert totals == {N // 4} and emails == sorted(emails) and len(emails) == N // 4
    pages = -(-(N // 4) // 20)
    assert f"creditlake_count_cache_hits_total {float(pages - 1)}" in metrics
