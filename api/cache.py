"""Short-TTL cache of query results keyed by the normalized query (Redis, else in-process).

Only engine results are cached; credits are charged for every answer, cached or not.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from creditlake.query import QueryResult

log = logging.getLogger(__name__)
LOCAL_MAX_ENTRIES = 512


class _Cached(msgspec.Struct, array_like=True):
    data_json: bytes
    returned: int
    total_records: int
    next_cursor: str | None
    page: int
    engine_ms: float


class ResultCache:
    def __init__(self, redis_client: aioredis.Redis | None, ttl_s: float, prefix: str,
                 retry_s: float = 5.0) -> None:
        self.redis = redis_client
        self.ttl_s = ttl_s
        self.prefix = prefix
        self.retry_s = retry_s
        self._local: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._redis_down_until = 0.0

    def _redis_ok(self) -> bool:
        return self.redis is not None and time.monotonic() >= self._redis_down_until

    def _redis_failed(self, exc: Exception) -> None:
        self._redis_down_until = time.monotonic() + self.retry_s
        log.warning("Redis unavailable for the result cache (%s); caching in-process", exc)

    async def get(self, key: str) -> QueryResult | None:
        raw = await self._get(key)
        if raw is None:
            return None
        c = msgspec.msgpack.decode(raw, type=_Cached)
        return QueryResult(c.data_json, c.returned, c.total_records, c.next_cursor, c.page, 0.0)

    async def _get(self, key: str) -> bytes | None:
        if self.ttl_s <= 0:
            return None
        raw: bytes | None = None
        if self._redis_ok():
            try:
                raw = await self.redis.get(f"{self.prefix}:qc:{key}")  # type: ignore[union-attr]
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
        if raw is None:
            hit = self._local.get(key)
            if hit is not None and hit[0] > time.monotonic():
                raw = hit[1]
        return raw

    async def set(self, key: str, r: QueryResult) -> None:
        await self._put(key, msgspec.msgpack.encode(_Cached(
            r.data_json, r.returned, r.total_records, r.next_cursor, r.page, r.engine_ms)))

    async def get_bytes(self, key: str) -> bytes | None:
        """Any other cached answer (enrichment), under its own key space."""
        return await self._get(f"b:{key}")

    async def set_bytes(self, key: str, raw: bytes) -> None:
        await self._put(f"b:{key}", raw)

    async def get_count(self, key: str) -> int | None:
        """A cached total_records for these filters (shared by every page and sort order)."""
        raw = await self._get(f"n:{key}")
        return int(raw) if raw is not None else None

    async def set_count(self, key: str, total: int) -> None:
        if total >= 0:
            await self._put(f"n:{key}", str(total).encode())

    async def _put(self, key: str, raw: bytes) -> None:
        if self.ttl_s <= 0:
            return
        if self._redis_ok():
            try:
                await self.redis.set(f"{self.prefix}:qc:{key}", raw,  # type: ignore[union-attr]
                                     px=int(self.ttl_s * 1000))
                return
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
        self._local[key] = (time.monotonic() + self.ttl_s, raw)
        self._local.move_to_end(key)
        while len(self._local) > LOCAL_MAX_ENTRIES:
            self._local.popitem(last=False)
