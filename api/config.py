"""API-only knobs (rate limit, cache), read from CREDITLAKE_* env next to creditlake.config."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ApiConfig:
    rate_limit: int = 600  # requests per key per window
    rate_window_s: float = 60.0
    cache_ttl_s: float = 30.0  # 0 disables the result cache
    redis_prefix: str = "creditlake"
    retry_after_s: int = 5  # Retry-After on 503
    redis_retry_s: float = 5.0  # after a Redis failure, use local limits this long, then retry
    ensure_schema: bool = True  # create the records table on first engine use if missing

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ApiConfig:
        env = dict(os.environ if env is None else env)
        limit, window = cls.rate_limit, cls.rate_window_s
        if spec := env.get("CREDITLAKE_RATE_LIMIT"):  # "600/60" = 600 requests per 60 s
            n, _, w = spec.partition("/")
            limit, window = int(n), float(w or 60)
        return cls(
            rate_limit=limit, rate_window_s=window,
            cache_ttl_s=float(env.get("CREDITLAKE_CACHE_TTL", cls.cache_ttl_s)),
            redis_prefix=env.get("CREDITLAKE_REDIS_PREFIX", cls.redis_prefix),
        )
