"""API-only knobs (rate limit, cache); the CREDITLAKE_* ones come from creditlake.config."""

from __future__ import annotations

from dataclasses import dataclass

from creditlake.config import Settings


@dataclass(frozen=True)
class ApiConfig:
    rate_limit: int = 600  # requests per key per window
    rate_window_s: float = 60.0
    cache_ttl_s: float = 30.0  # 0 disables the result cache
    key_cache_s: float = 5.0  # a checked API key is trusted this long (see auth/keys.py)
    redis_prefix: str = "creditlake"
    retry_after_s: int = 5  # Retry-After on 503
    redis_retry_s: float = 5.0  # after a Redis failure, use local limits this long, then retry
    breaker_failures: int = 5  # engine failures in a row that open the circuit
    breaker_reset_s: float = 10.0  # open this long, then one half-open probe
    engine_timeout_s: float = 15.0  # an engine call without an answer by then is a failure
    ensure_schema: bool = True  # create the records table on first engine use if missing

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiConfig:
        return cls(rate_limit=settings.rate_limit, rate_window_s=settings.rate_window_s,
                   cache_ttl_s=settings.cache_ttl_s, redis_prefix=settings.redis_prefix)
