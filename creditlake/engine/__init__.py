"""One interface to ClickHouse, whether embedded (chDB) or a server.

Everything that talks to ClickHouse goes through `Engine`, so the embedded engine can be
shared between processes (see engine/sharing.py) without the callers knowing.
"""

from __future__ import annotations

from creditlake.config import Settings
from creditlake.engine.base import Engine, EngineError, EngineUnavailable
from creditlake.engine.client import ClickHouseEngine, open_engine


def connect_engine(settings: Settings, *, role: str) -> Engine:
    """The engine for this process: direct for a server URL; for the embedded engine, the
    owner or a client of the process that owns the data directory (engine/sharing.py)."""
    from creditlake.engine.sharing import connect  # lazy: keeps `import creditlake` light

    return connect(settings, role=role)


__all__ = ["ClickHouseEngine", "Engine", "EngineError", "EngineUnavailable", "connect_engine",
           "open_engine"]
