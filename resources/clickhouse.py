import atexit
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from creditlake.clickhouse.base import Engine
from creditlake.clickhouse.ddl import migrate
from creditlake.config import Settings, load_settings

# One engine per process and target, opened on first use and closed at exit: every step of a
# run (3 assets + 4 checks per file) reuses it instead of re-running the owner election,
# re-opening chDB and re-checking the migrations.
_ENGINES: dict[tuple[str, str, str], Engine] = {}
_LOCK = threading.Lock()


def _close_all() -> None:
    with _LOCK:
        for engine in _ENGINES.values():
            with contextlib.suppress(Exception):  # best effort, often at interpreter exit
                engine.close()
        _ENGINES.clear()


atexit.register(_close_all)


class ClickHouseResource(dg.ConfigurableResource):
    """ClickHouse by URL: `chdb:///abs/path` (embedded, shared with the API through the
    engine owner) or `http(s)://user:pass@host:8123` (server). Opened on first use in a
    process, never at definition load: the webserver and daemon import definitions.py too."""

    url: str
    database: str = "creditlake"
    home: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "ClickHouseResource":
        return cls(url=settings.clickhouse_url, database=settings.clickhouse_database,
                   home=str(settings.home))

    def settings(self) -> Settings:
        base = load_settings({"CREDITLAKE_HOME": self.home})
        return Settings(home=base.home, clickhouse_url=self.url,
                        clickhouse_database=self.database, database_url=base.database_url,
                        redis_url=None, admin_token=None)

    def engine(self) -> Engine:
        key = (self.url, self.database, self.home)
        with _LOCK:
            engine = _ENGINES.get(key)
            if engine is None:
                from creditlake.clickhouse import connect_engine

                engine = connect_engine(self.settings(), role="dagster")
                migrate(engine)
                _ENGINES[key] = engine
            return engine

    @contextmanager
    def open(self) -> Iterator[Engine]:
        yield self.engine()


def open_in_background(resource: ClickHouseResource) -> threading.Thread:
    """Start opening the resource's engine (what its first step would do) on a thread; a
    failure is left for that step to raise. chDB's start-up runs mostly outside the GIL, so
    a command can do it while it imports and loads definitions. Join before release_engines."""
    def _open() -> None:
        with contextlib.suppress(Exception):
            resource.engine()

    thread = threading.Thread(target=_open, name="creditlake-engine-open", daemon=True)
    thread.start()
    return thread


def release_engines() -> None:
    """Close this process's engines now (hand the embedded engine to another process)."""
    _close_all()
