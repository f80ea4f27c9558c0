"""Start-up checks of the services a command depends on, in words an operator can act on:
which dependency is down, where it was looked for (password hidden) and how to fix it."""

from __future__ import annotations

from creditlake.config import Settings
from creditlake.redact import redact


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return redact(text[0] if text else type(exc).__name__)[:300]


def ledger_problem(settings: Settings) -> str | None:
    import sqlalchemy as sa

    from creditlake.ledger import db

    extra = ({"connect_args": {"connect_timeout": 5}}
             if settings.database_url.startswith("postgresql") else {})
    engine = db.make_engine(settings.database_url, **extra)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        return (f"the ledger database is unreachable at {redact(settings.database_url)}"
                f" ({_reason(exc)}): start it, or point CREDITLAKE_DATABASE_URL at a reachable "
                "database (unset = SQLite under CREDITLAKE_HOME)")
    finally:
        engine.dispose()
    return None


def clickhouse_problem(settings: Settings) -> str | None:
    """Only for a server URL: the embedded engine is opened (or shared) by the command itself."""
    if settings.embedded:
        return None
    from creditlake.clickhouse import ClickHouseEngine

    try:
        ClickHouseEngine(settings.clickhouse_url, settings.clickhouse_database).close()
    except Exception as exc:  # noqa: BLE001
        return (f"ClickHouse is unreachable at {redact(settings.clickhouse_url)} "
                f"({_reason(exc)}): start the server, or fix "
                "CREDITLAKE_CLICKHOUSE_URL (unset = the embedded chDB under CREDITLAKE_HOME)")
    return None


def dependency_problems(settings: Settings) -> list[str]:
    return [p for p in (ledger_problem(settings), clickhouse_problem(settings)) if p]
