"""One interface to ClickHouse, whether embedded (chDB) or a server.

Everything that talks to ClickHouse goes through `Engine`, so the embedded engine can be
shared between processes (see engine/sharing.py) without the callers knowing.
"""

from __future__ import annotations

from creditlake.engine.base import Engine, EngineError, EngineUnavailable
from creditlake.engine.client import ClickHouseEngine, open_engine

__all__ = ["ClickHouseEngine", "Engine", "EngineError", "EngineUnavailable", "open_engine"]
