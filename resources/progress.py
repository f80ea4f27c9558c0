from __future__ import annotations

import time
from typing import Protocol


class ProgressReporter(Protocol):
    """Where long stages report rows processed (the CLI draws bars; Dagster logs)."""

    def start(self, key: str, stage: str, total_bytes: int | None) -> None: ...
    def advance(self, rows: int) -> None: ...
    def finish(self) -> None: ...


class LogProgress:
    """Default reporter: a log line at most every `every` seconds (visible in the run log)."""

    def __init__(self, log=None, every: float = 5.0) -> None:
        self.log, self.every = log, every
        self._rows = 0
        self._last = self._t0 = time.monotonic()
        self._what = ""

    def start(self, key: str, stage: str, total_bytes: int | None) -> None:
        self._rows, self._t0 = 0, time.monotonic()
        self._last, self._what = self._t0, f"{stage} {key}"

    def advance(self, rows: int) -> None:
        self._rows += rows
        now = time.monotonic()
        if self.log is not None and now - self._last >= self.every:
            rate = self._rows / max(now - self._t0, 1e-9)
            self.log.info(f"{self._what}: {self._rows:,} rows ({rate:,.0f} rows/s)")
            self._last = now

    def finish(self) -> None:
        return None
