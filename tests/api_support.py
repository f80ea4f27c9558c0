"""Helpers for the API/ledger/query tests: synthetic records, ledgers on SQLite/PostgreSQL,
and app clients. Real services only (chDB via the `engine` fixture, PostgreSQL, Redis)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from creditlake.clickhouse import ClickHouseEngine
from creditlake.clickhouse.base import Engine
from creditlake.config import Settings
from creditlake.ledger import Ledger
from creditlake.schema import RECORD_FIELDS

ADMIN_TOKEN = "test-admin-token"
COUNTRIES = ("US", "DE", "FR", "GB", "BR")
STATUSES = ("active", "inactive", "pending", "suspended")


def seed_records(engine: Engine, n: int = 1000) -> None:
    """n deterministic rows in {db}.records: country = COUNTRIES[i % 5],
    status = STATUSES[i % 4], created_date = 2024-01-01 + i % 366 (NULL when i % 97 == 0),
    email = user{i}@example.com, data_quality_score = (i % 100) / 100."""
    engine.command(f"""
        INSERT INTO {engine.database}.records ({", ".join(RECORD_FIELDS)})
        SELECT
            generateUUIDv4(number) AS id,
            'seed.csv' AS source_file,
            lower(hex(MD5(toString(number)))) AS record_hash,
            toDateTime64('2025-01-01 00:00:00', 3, 'UTC') AS ingested_at,
            toString(number) AS user_id,
            concat('user', toString(number), '@example.com') AS email,
            concat('Person ', toString(number)) AS name,
            concat('+1415555', leftPad(toString(number % 10000), 4, '0')) AS phone,
            concat(toString(number), ' Main St') AS address,
            ['Springfield', 'Berlin', 'Paris', 'London', 'Rio'][number % 5 + 1] AS city,
            ['US', 'DE', 'FR', 'GB', 'BR'][number % 5 + 1] AS country,
            if(number % 97 = 0, NULL, toDate('2024-01-01') + number % 366) AS created_date,
            ['active', 'inactive', 'pending', 'suspended'][number % 4 + 1] AS status,
            '{{}}' AS metadata,
            toFloat32((number % 100) / 100) AS data_quality_score,
            if(number % 10 = 0, ['phone_invalid'], []) AS validation_errors
        FROM numbers({int(n)})
    """)


@contextmanager
def seeded_database(chdb_path: Path, n: int) -> Iterator[ClickHouseEngine]:
    """A fresh database on the session chDB path with n seeded rows (for module fixtures:
    read-only tests share it instead of seeding per test)."""
    from creditlake.clickhouse.ddl import migrate

    db = f"t_api_{uuid.uuid4().hex[:10]}"
    eng = ClickHouseEngine(f"chdb://{chdb_path}", db)
    try:
        migrate(eng)
        seed_records(eng, n)
        yield eng
    finally:
        eng.command(f"DROP DATABASE IF EXISTS {db}")
        eng.close()


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@contextmanager
def pg_schema_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    schema = f"cl_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def api_settings(home: Path, clickhouse_url: str, database: str, database_url: str,
                 redis_url: str | None = None) -> Settings:
    home.mkdir(parents=True, exist_ok=True)
    return Settings(home=home, clickhouse_url=clickhouse_url, clickhouse_database=database,
                    database_url=database_url, redis_url=redis_url, admin_token=ADMIN_TOKEN)


def new_user(ledger: Ledger, credits: int = 1000) -> tuple[str, str]:
    """(user_id, api_key) for a fresh user."""
    user, key = ledger.create_user(f"u{uuid.uuid4().hex[:10]}@example.com", credits)
    assert key is not None
    return user.id, key.api_key
