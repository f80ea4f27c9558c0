from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import pyarrow as pa


class EngineError(RuntimeError):
    """A query failed inside ClickHouse (bad SQL, timeout, ...)."""


class EngineUnavailable(EngineError):
    """The engine cannot be reached right now (locked by another process, server down)."""


class Engine(Protocol):
    """What the rest of creditlake needs from ClickHouse. SQL uses {name:Type} parameters."""

    database: str
    cluster: str  # ON CLUSTER name for DDL/DELETE when tables are Distributed (config.Settings)

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None,
                settings: Mapping[str, Any] | None = None) -> int:
        """Run a statement; returns written_rows (0 for DDL)."""
        ...

    def query_arrow(self, sql: str, parameters: Mapping[str, Any] | None = None,
                    settings: Mapping[str, Any] | None = None) -> pa.Table: ...

    def query_rows(self, sql: str, parameters: Mapping[str, Any] | None = None,
                   settings: Mapping[str, Any] | None = None) -> list[tuple]: ...

    def insert_arrow(self, table: str, data: pa.Table,
                     settings: Mapping[str, Any] | None = None) -> int: ...

    def close(self) -> None: ...
