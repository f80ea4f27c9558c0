"""Per-key sliding-window rate limit: atomic Lua in Redis (shared by every instance), with an
in-process fallback while Redis is down (logged, retried every few seconds)."""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# Sliding-window log: one sorted-set member per request in the window; Redis TIME keeps all
# instances on one clock. Returns {allowed, remaining, ms_until_a_slot_frees}.
SLIDING_WINDOW_LUA = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local n = redis.call('ZCARD', key)
if n < limit then
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, window)
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {1, limit - n - 1, tonumber(oldest[2]) + window - now}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: float  # seconds until the oldest request leaves the window

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(max(self.remaining, 0)),
                "X-RateLimit-Reset": str(max(int(self.reset_s + 0.999), 0))}

    @property
    def retry_after(self) -> int:
        return max(int(self.reset_s + 0.999), 1)


class LocalWindow:
    """The same sliding window in process memory (per instance): the fallback."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str, limit: int, window_s: float) -> Decision:
        now = time.monotonic()
        q = self._hits.setdefault(key, deque())
        while q and q[0] <= now - window_s:
            q.popleft()
        if len(q) < limit:
            q.append(now)
            return Decision(True, limit, limit - len(q), q[0] + window_s - now)
        return Decision(False, limit, 0, q[0] + window_s - now)


class RateLimiter:
    def __init__(self, redis_client: aioredis.Redis | None, limit: int, window_s: float,
                 prefix: str, retry_s: float = 5.0) -> None:
        self.redis = redis_client
        self.limit = limit
        self.window_s = window_s
        self.prefix = prefix
        self.retry_s = retry_s
        self.local = LocalWindow()
        self._redis_down_until = 0.0
        self._script = redis_client.register_script(SLIDING_WINDOW_LUA) if redis_client else None

    @property
    def using_redis(self) -> bool:
        return self.redis is not None and time.monotonic() >= self._redis_down_until

    async def hit(self, key: str) -> Decision:
        if self._script is not None and time.monotonic() >= self._redis_down_until:
            try:
                allowed, remaining, reset_ms = await self._script(
                    keys=[f"{self.prefix}:rl:{key}"],
                    args=[self.limit, int(self.window_s * 1000), uuid.uuid4().hex])
                return Decision(bool(allowed), self.limit, int(remaining), int(reset_ms) / 1000)
            except (RedisError, OSError) as exc:
                self._redis_down_until = time.monotonic() + self.retry_s
                log.warning("Redis unavailable for rate limiting (%s); using in-process limits "
                            "for %.0f s", exc, self.retry_s)
        return self.local.hit(key, self.limit, self.window_s)
