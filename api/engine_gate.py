"""Access to ClickHouse for the API: opened lazily, off the event loop.

Engine calls run on worker threads (a slow query never blocks the event loop): as many as the
engine answers at once (`read_parallelism`: the embedded engine's owner keeps a small pool of
reader handles, see clickhouse/owner.py), else one. The provider is either an Engine
object (owned by the caller, never closed here) or a callable that opens one (closed at
shutdown), so a shared/proxied engine can be plugged in later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from creditlake.clickhouse.base import Engine, EngineUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
EngineProvider = Callable[[], Engine] | Engine


class EngineGate:
    def __init__(self, provider: EngineProvider, database: str, *,
                 on_open: Callable[[Engine], None] | None = None) -> None:
        self._owned = not hasattr(provider, "query_arrow")
        # Known without opening the engine, so queries compile (and hit the cache) first.
        self.database = database if self._owned else provider.database  # type: ignore[union-attr]
        self._provider = provider
        self._engine: Engine | None = None if self._owned else provider  # type: ignore[assignment]
        self._on_open = on_open
        self._opened_once = False
        self._lock = threading.Lock()
        self.workers = getattr(provider, "read_parallelism", 1)
        self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                        thread_name_prefix="creditlake-engine")
        self._in_flight = 0  # calls submitted and not yet finished (or cancelled unstarted)
        self._in_flight_lock = threading.Lock()

    def _get(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._provider()  # type: ignore[operator]
            if not self._opened_once:
                self._opened_once = True
                if self._on_open is not None:
                    try:
                        self._on_open(self._engine)
                    except Exception as exc:  # noqa: BLE001 - e.g. read-only server user
                        log.warning("engine setup step failed: %s", exc)
            return self._engine

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        engine = self._get()
        try:
            return fn(engine, *args)
        except EngineUnavailable:
            self._drop()
            raise

    def _drop(self) -> None:
        """Forget an engine that became unavailable so the next call opens a fresh one."""
        with self._lock:
            if self._owned and self._engine is not None:
                with contextlib.suppress(Exception):
                    self._engine.close()
                self._engine = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(engine, *args) on an engine thread."""
        with self._in_flight_lock:
            self._in_flight += 1
        job = self._pool.submit(self._call, fn, args)
        job.add_done_callback(self._finished)  # also when cancelled before it started
        return await asyncio.wrap_future(job)

    def _finished(self, _: Future[Any]) -> None:
        with self._in_flight_lock:
            self._in_flight -= 1

    @property
    def idle_workers(self) -> int:
        """Engine threads with nothing to do right now (a call may fan out onto them)."""
        return max(self.workers - self._in_flight, 0)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            if self._owned and self._engine is not None:
                self._engine.close()
                self._engine = None
