"""Circuit breaker around ClickHouse: a failing or silent engine is not hit by every request.

closed     calls pass; `failure_threshold` failures in a row (errors or no answer within
           `call_timeout_s`) open the circuit
open       calls fail at once with CircuitOpen (503 + Retry-After, nothing charged) for
           `reset_after_s`
half_open  one probe call passes; success closes the circuit, failure opens it again (the
           other calls meanwhile fail fast)
The state is in /healthz and /metrics (creditlake_engine_circuit_state).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

from api.engine_gate import EngineGate
from creditlake.clickhouse.base import EngineError, EngineUnavailable

T = TypeVar("T")


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(EngineUnavailable):
    """The breaker refused the call without trying the engine."""


class Breaker:
    def __init__(self, failure_threshold: int = 5, reset_after_s: float = 10.0,
                 call_timeout_s: float = 15.0, clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[CircuitState], None] | None = None) -> None:
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self.call_timeout_s = call_timeout_s
        self._clock = clock
        self._on_change = on_change
        self.state = CircuitState.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._probing = False

    def _set(self, state: CircuitState) -> None:
        if state != self.state:
            self.state = state
            if self._on_change is not None:
                self._on_change(state)

    def retry_after_s(self) -> int:
        left = self.reset_after_s - (self._clock() - self.opened_at)
        return max(1, int(left + 0.999))

    def admit(self) -> None:
        """Raise CircuitOpen unless this call may go to the engine."""
        if self.state == CircuitState.OPEN:
            if self._clock() - self.opened_at < self.reset_after_s:
                raise CircuitOpen("ClickHouse is failing: circuit open, not trying it for "
                                  f"{self.retry_after_s()} s")
            self._set(CircuitState.HALF_OPEN)
        if self.state == CircuitState.HALF_OPEN:
            if self._probing:
                raise CircuitOpen("ClickHouse is failing: circuit half-open, one probe running")
            self._probing = True

    def success(self) -> None:
        self._probing = False
        self.failures = 0
        self._set(CircuitState.CLOSED)

    def failure(self) -> None:
        self._probing = False
        self.failures += 1
        if self.state == CircuitState.HALF_OPEN or self.failures >= self.failure_threshold:
            self.opened_at = self._clock()
            self._set(CircuitState.OPEN)

    async def call(self, fn: Callable[[], Any]) -> Any:
        self.admit()
        try:
            result = await asyncio.wait_for(fn(), self.call_timeout_s)
        except TimeoutError:
            self.failure()
            raise EngineUnavailable(f"ClickHouse did not answer within "
                                    f"{self.call_timeout_s:g} s") from None
        except (EngineError, OSError):
            self.failure()
            raise
        except BaseException:
            self._probing = False  # not the engine's fault (e.g. cancelled): no verdict
            raise
        self.success()
        return result


class GuardedGate:
    """The EngineGate with every call through the breaker (same interface)."""

    def __init__(self, gate: EngineGate, breaker: Breaker) -> None:
        self.gate = gate
        self.breaker = breaker

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.breaker.call(lambda: self.gate.run(fn, *args))

    @property
    def idle_workers(self) -> int:
        """Idle engine threads, 0 unless the circuit is closed (half-open admits one call)."""
        return self.gate.idle_workers if self.breaker.state == CircuitState.CLOSED else 0

    def __getattr__(self, name: str) -> Any:  # database, close, ...
        return getattr(self.gate, name)
