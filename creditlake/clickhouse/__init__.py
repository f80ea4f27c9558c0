"""One interface to ClickHouse, whether embedded (chDB) or a server.

Everything that talks to ClickHouse goes through `Engine`, so the embedded engine can be
shared between processes (see clickhouse/sharing.py) without the callers knowing.
"""

from __future__ import annotations

from creditlake.clickhouse.base import Engine, EngineError, EngineUnavailable
from creditlake.clickhouse.client import ClickHouseEngine, open_engine
from creditlake.config import Settings


def connect_engine(settings: Settings, *, role: str) -> Engine:
    """The engine for this process: direct for a server URL; for the embedded engine, the
    owner or a client of the process that owns the data directory (clickhouse/sharing.py)."""
    from creditlake.clickhouse.sharing import connect  # lazy: keeps `import creditlake` light

    return connect(settings, role=role)


__all__ = ["ClickHouseEngine", "Engine", "EngineError", "EngineUnavailable", "connect_engine",
           "open_engine"]
