"""Per-app runtime objects (ledger, engine gate, limiter, cache, metrics) on app.state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
import redis.asyncio as aioredis
from litestar.connection import ASGIConnection

from api.breaker import GuardedGate
from api.cache import ResultCache
from api.config import ApiConfig
from api.metrics import Metrics
from api.ratelimit import RateLimiter
from creditlake.config import Settings
from creditlake.ledger import Ledger

T = TypeVar("T")


if TYPE_CHECKING:
    from api.auth.keys import KeyCache


@dataclass
class Runtime:
    settings: Settings
    config: ApiConfig
    ledger: Ledger
    keys: KeyCache  # API key -> KeyInfo, in front of the ledger
    gate: GuardedGate  # the EngineGate behind the ClickHouse circuit breaker
    limiter: RateLimiter
    cache: ResultCache
    metrics: Metrics
    redis: aioredis.Redis | None


def runtime(connection: ASGIConnection | Any) -> Runtime:
    return connection.app.state.runtime


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Blocking ledger (DB) work off the event loop."""
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))
