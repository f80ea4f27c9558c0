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

    async def lookup(self, key: str, count_key: str) -> tuple[QueryResult | None, int | None]:
        """The cached answer and the cached total_records of its filters: one Redis call."""
        result, total = await self._get_many([key, f"n:{count_key}"])
        return _result(result), int(total) if total is not None else None

    async def store(self, key: str, r: QueryResult, count_key: str | None) -> None:
        """The answer and (count_key given) its total_records: one Redis call."""
        items = {key: _encode(r)}
        if count_key is not None and r.total_records >= 0:
            items[f"n:{count_key}"] = str(r.total_records).encode()
        await self._put_many(items)

    async def _get(self, key: str) -> bytes | None:
        return (await self._get_many([key]))[0]

    async def _get_many(self, keys: list[str]) -> list[bytes | None]:
        if self.ttl_s <= 0:
            return [None] * len(keys)
        raws: list[bytes | None] = [None] * len(keys)
        if self._redis_ok():
            try:
                raws = await self.redis.mget(  # type: ignore[union-attr]
                    [f"{self.prefix}:qc:{k}" for k in keys])
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
        now = time.monotonic()
        for i, k in enumerate(keys):
            if raws[i] is None:
                hit = self._local.get(k)
                if hit is not None and hit[0] > now:
                    raws[i] = hit[1]
        return raws

    async def get_bytes(self, key: str) -> bytes | None:
        """Any other cached answer (enrichment), under its own key space."""
        return await self._get(f"b:{key}")

    async def set_bytes(self, key: str, raw: bytes) -> None:
        await self._put(f"b:{key}", raw)

    async def _put(self, key: str, raw: bytes) -> None:
        await self._put_many({key: raw})

    async def _put_many(self, items: dict[str, bytes]) -> None:
        if self.ttl_s <= 0:
            return
        if self._redis_ok():
            try:
                pipe = self.redis.pipeline(transaction=False)  # type: ignore[union-attr]
                for key, raw in items.items():
                    pipe.set(f"{self.prefix}:qc:{key}", raw, px=int(self.ttl_s * 1000))
                await pipe.execute()
                return
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
        for key, raw in items.items():
            self._local[key] = (time.monotonic() + self.ttl_s, raw)
            self._local.move_to_end(key)
        while len(self._local) > LOCAL_MAX_ENTRIES:
            self._local.popitem(last=False)


def _encode(r: QueryResult) -> bytes:
    return msgspec.msgpack.encode(_Cached(r.data_json, r.returned, r.total_records,
                                          r.next_cursor, r.page, r.engine_ms))


def _result(raw: bytes | None) -> QueryResult | None:
    if raw is None:
        return None
    c = msgspec.msgpack.decode(raw, type=_Cached)
    return QueryResult(c.data_json, c.returned, c.total_records, c.next_cursor, c.page, 0.0)
