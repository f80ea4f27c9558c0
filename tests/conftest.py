"""Shared fixtures: real chDB, PostgreSQL and Redis. No mocks.

chDB hosts one data path per process, so the whole test session shares one chDB directory and
every test gets its own ClickHouse *database* inside it (fast, isolated).
With CI=true a missing PostgreSQL/Redis fails the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from creditlake.clickhouse import ClickHouseEngine
from creditlake.config import Processing, Settings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get(
    "CREDITLAKE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("CREDITLAKE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser end-to-end tests run last: they are the slowest and start a whole demo."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


def _service_missing(what: str, exc: Exception) -> None:
    msg = f"{what} is not reachable: {exc}"
    if IN_CI:
        pytest.fail(msg + " (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def _shared_engine(chdb_path: Path) -> Iterator[ClickHouseEngine]:
    eng = ClickHouseEngine(f"chdb://{chdb_path}", "default")
    yield eng
    eng.close()


@pytest.fixture
def engine(chdb_path: Path, _shared_engine: ClickHouseEngine) -> Iterator[ClickHouseEngine]:
    """A ClickHouseEngine on the session's chDB, in a fresh database (migrated)."""
    from creditlake.clickhouse.ddl import migrate

    db = f"t_{uuid.uuid4().hex[:12]}"
    eng = ClickHouseEngine(f"chdb://{chdb_path}", db)
    migrate(eng)
    yield eng
    eng.command(f"DROP DATABASE IF EXISTS {db}")
    eng.close()


@pytest.fixture
def settings(tmp_path: Path, chdb_path: Path, engine: ClickHouseEngine) -> Settings:
    """Settings pointing at a temporary home, the session chDB and the test's database."""
    home = tmp_path / "home"
    home.mkdir()
    return Settings(
        home=home,
        clickhouse_url=f"chdb://{chdb_path}",
        clickhouse_database=engine.database,
        database_url=f"sqlite:///{home / 'ledger.db'}",
        redis_url=None,
        admin_token="test-admin-token",
        # CREDITLAKE_TEST_PROCESSING runs the ingest tests on another normalize backend
        processing=Processing(os.environ.get("CREDITLAKE_TEST_PROCESSING") or "polars"),
    )


@pytest.fixture(scope="session")
def postgres_url() -> str:
    import sqlalchemy as sa

    try:
        eng = sa.create_engine(POSTGRES_URL)
        with eng.connect() as conn:
            conn.execute(sa.text("select 1"))
        eng.dispose()
    except Exception as exc:  # noqa: BLE001
        _service_missing("PostgreSQL", exc)
    return POSTGRES_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except Exception as exc:  # noqa: BLE001
        _service_missing("Redis", exc)
    return REDIS_URL
