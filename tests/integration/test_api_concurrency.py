"""No overspend under concurrency on PostgreSQL: threads and processes on the ledger service
function, and >= 50 concurrent HTTP requests through two app instances."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from api_support import api_settings, new_user, pg_schema_url, seeded_database
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.config import ApiConfig
from creditlake.ledger import InsufficientCredits, Ledger, UsageRecord


@pytest.fixture
def pg_ledger(postgres_url):
    with pg_schema_url(postgres_url) as url:
        led = Ledger(url)
        yield led
        led.close()


def _charge(ledger: Ledger, user_id: str, cost: int) -> bool:
    try:
        ledger.charge(user_id, cost, UsageRecord("POST", "/api/v1/query", 200, 1.0,
                                                 user_id=user_id))
        return True
    except InsufficientCredits:
        return False


def assert_reconciles(ledger: Ledger, user_id: str, start: int, cost: int, ok: int) -> None:
    t = ledger.ledger_totals(user_id)
    assert t["balance"] == start - ok * cost >= 0
    assert t["debited"] == t["usage_credits"] == ok * cost
    assert t["credited"] == start


def test_threads_never_overspend(pg_ledger):
    user_id, _ = new_user(pg_ledger, 100)
    with ThreadPoolExecutor(max_workers=60) as pool:
        results = list(pool.map(lambda _: _charge(pg_ledger, user_id, 3), range(60)))
    assert sum(results) == 33  # 33 * 3 = 99 <= 100 < 34 * 3
    assert_reconciles(pg_ledger, user_id, 100, 3, 33)


def test_threads_spanning_several_grants(pg_ledger):
    user_id, _ = new_user(pg_ledger, 10)
    for amount, days in ((7, 1), (9, 2), (11, 3)):
        pg_ledger.add_credits(user_id, amount, expires_at=f"2099-01-0{days}")
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda _: _charge(pg_ledger, user_id, 4), range(50)))
    assert sum(results) == 9  # 37 credits / 4
    assert_reconciles(pg_ledger, user_id, 37, 4, 9)
    left = {g.reason: g.remaining for g in pg_ledger.grants(user_id, include_spent=True)}
    assert left == {"grant": 0, "signup": 1} or sorted(left.values()) == [0, 1]


WORKER = Path(__file__).parent.parent / "api_ledger_worker.py"


def test_processes_never_overspend(postgres_url):
    with pg_schema_url(postgres_url) as url:
        ledger = Ledger(url)
        user_id, _ = new_user(ledger, 100)
        procs = [subprocess.Popen([sys.executable, str(WORKER), url, user_id, "7", "30"],
                                  stdout=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=120)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0]
        assert sum(int(o.strip()) for o in outs) == 14  # 60 attempts, 100 // 7 succeed
        assert_reconciles(ledger, user_id, 100, 7, 14)
        ledger.close()


def test_concurrent_http_requests_two_instances(tmp_path, chdb_path, pg_ledger):
    with seeded_database(chdb_path, 500) as seeded:
        settings = api_settings(tmp_path / "home", f"chdb://{chdb_path}", seeded.database,
                                str(pg_ledger.engine.url))
        cfg = ApiConfig(cache_ttl_s=0)
        apps = [create_app(settings, seeded, config=cfg, ledger=pg_ledger) for _ in range(2)]
        user_id, key = new_user(pg_ledger, 20)
        body = {"limit": 100}  # 100 rows -> 2 credits

        async def main():
            async with AsyncTestClient(apps[0]) as a, AsyncTestClient(apps[1]) as b:
                return await asyncio.gather(*[
                    (a if i % 2 else b).post("/api/v1/query", json=body,
                                             headers={"X-API-Key": key})
                    for i in range(60)])

        responses = asyncio.run(main())
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 10 + [402] * 50
    remaining = sorted(r.json()["metadata"]["credits_remaining"] for r in responses
                       if r.status_code == 200)
    assert remaining == list(range(0, 20, 2))  # every balance step handed out exactly once
    assert_reconciles(pg_ledger, user_id, 20, 2, 10)
    rows = pg_ledger.usage(user_id, limit=1000)[0]
    assert len(rows) == 60 and sum(r["credits_used"] for r in rows) == 20


def test_postgres_migration_matches_models(pg_ledger):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from creditlake.ledger.models import Base

    with pg_ledger.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
