"""Guards: API key (plus the per-key rate limit) and admin token."""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from api.errors import AdminAuthError, RateLimited
from api.runtime import runtime
from creditlake.ledger import ApiKeyRevoked


async def requires_api_key(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    rt = runtime(connection)
    try:
        key = await rt.keys.authenticate(connection.headers.get("x-api-key"))
    except ApiKeyRevoked as exc:
        connection.state.user_id = exc.user_id  # log the refused request against its owner
        raise
    connection.state.api_key = key
    connection.state.user_id = key.user_id
    decision = await rt.limiter.hit(key.id)
    connection.state.rate = decision
    if not decision.allowed:
        rt.metrics.queries.labels("rate_limited").inc()
        raise RateLimited(
            f"Rate limit exceeded: {decision.limit} requests per {rt.config.rate_window_s:g} s",
            headers={"Retry-After": str(decision.retry_after)})


async def requires_admin(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    expected = runtime(connection).settings.admin_token
    if not expected:
        raise AdminAuthError("Admin API is disabled (set CREDITLAKE_ADMIN_TOKEN)")
    given = connection.headers.get("x-admin-token") or ""
    auth = connection.headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise AdminAuthError("Invalid admin token")
    connection.state.admin = True
