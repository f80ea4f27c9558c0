"""clickhouse-connect backed Engine: `chdb:///abs/path` opens chDB in-process, http(s) a server."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Mapping
from typing import Any

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.exceptions import ClickHouseError, ProgrammingError
from clickhouse_connect.driver.query import to_arrow

from creditlake.clickhouse.base import EngineError, EngineUnavailable
from creditlake.config import DEFAULT_CLUSTER, Settings
from creditlake.redact import redact

ARROW_STRINGS = "output_format_arrow_string_as_string"  # Arrow strings, not binary
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ClickHouseEngine:
    def __init__(self, url: str, database: str = "creditlake",
                 cluster: str = DEFAULT_CLUSTER) -> None:
        self.url = url
        self.embedded = url.startswith("chdb:")
        self.database = database
        self.cluster = cluster
        try:
            if url.startswith("chdb:"):
                self._client = clickhouse_connect.get_client(dsn=url)
            else:
                self._client = clickhouse_connect.get_client(dsn=url, autogenerate_session_id=False)
        except ProgrammingError as exc:  # chDB path locked by another process / other path open
            raise EngineUnavailable(redact(str(exc))) from exc
        except Exception as exc:  # server unreachable
            raise EngineUnavailable(redact(f"cannot reach ClickHouse at {url}: {exc}")) from exc
        # chDB runs one query at a time per process; a lock keeps threads from interleaving
        # calls on the shared handle (the server client is thread-safe anyway).
        self._lock = threading.RLock()
        self.command(f"CREATE DATABASE IF NOT EXISTS {database}")

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None,
                settings: Mapping[str, Any] | None = None) -> int:
        with self._lock, _errors():
            result = self._client.command(sql, parameters=parameters, settings=settings)
        summary = getattr(result, "summary", None) or {}
        return int(summary.get("written_rows", 0) or 0)

    def query_arrow(self, sql: str, parameters: Mapping[str, Any] | None = None,
                    settings: Mapping[str, Any] | None = None) -> pa.Table:
        with self._lock, _errors():
            if self.embedded:
                # The driver applies a chDB query's settings as SET statements around it (a
                # system.settings read, then a SET and a restore per setting: ~7 ms of a 20 ms
                # page query); the statement's own SETTINGS clause costs nothing.
                clause = settings_clause({ARROW_STRINGS: 1, **(settings or {})})
                try:
                    raw = self._client.raw_query(f"{sql}\nSETTINGS {clause}",
                                                 parameters=parameters, fmt="Arrow")
                except Exception:
                    # chDB keeps a failed Arrow query's partial output and prepends it to the
                    # next result on this handle: drain it with a throw-away query
                    with contextlib.suppress(Exception):
                        self._client.raw_query("SELECT 1", fmt="TabSeparated")
                    raise
                return to_arrow(raw)
            return self._client.query_arrow(sql, parameters=parameters, settings=settings,
                                            use_strings=True)

    def query_rows(self, sql: str, parameters: Mapping[str, Any] | None = None,
                   settings: Mapping[str, Any] | None = None) -> list[tuple]:
        with self._lock, _errors():
            return list(self._client.query(sql, parameters=parameters,
                                           settings=settings).result_rows)

    def insert_arrow(self, table: str, data: pa.Table,
                     settings: Mapping[str, Any] | None = None) -> int:
        if data.num_rows == 0:
            return 0
        with self._lock, _errors():
            summary = self._client.insert_arrow(table, data, settings=settings)
        return int(getattr(summary, "written_rows", data.num_rows) or data.num_rows)

    def close(self) -> None:
        with self._lock:
            self._client.close()


def quote_literal(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def settings_clause(settings: Mapping[str, Any]) -> str:
    """`k = 'v', ...` for a SETTINGS clause: names checked, values quoted (ClickHouse converts
    a quoted literal to the setting's type)."""
    parts = []
    for name, value in settings.items():
        if not _SETTING_NAME.fullmatch(name):
            raise ValueError(f"bad setting name {name!r}")
        parts.append(f"{name} = {quote_literal(str(value))}")
    return ", ".join(parts)


class _errors:
    """Translate driver exceptions into EngineError so callers need not know the driver."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is not None and isinstance(exc, ClickHouseError) and not isinstance(
            exc, EngineError
        ):
            raise EngineError(redact(str(exc))) from exc
        return False


def open_engine(settings: Settings) -> ClickHouseEngine:
    """Open the configured engine directly. Shared-access logic lives in clickhouse/sharing.py."""
    if settings.embedded and settings.chdb_path is not None:
        settings.chdb_path.mkdir(parents=True, exist_ok=True)
    return ClickHouseEngine(settings.clickhouse_url, settings.clickhouse_database,
                            settings.clickhouse_cluster)
