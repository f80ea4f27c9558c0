"""Observability around every routed request: request id, latency metric, rate-limit headers,
usage log.

The usage row is written here unless the handler already wrote it inside its debit
transaction (state.usage_logged), so every /api/ request lands in api_usage_logs once.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.runtime import in_thread
from creditlake.ledger import UsageRecord

log = logging.getLogger(__name__)


def observe_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})  # type: ignore[assignment]
        t0 = time.perf_counter()
        status = 500
        request_id = request_id_of(scope)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                decision = state.get("rate")
                if decision is not None:
                    present = {k.lower() for k, _ in message.get("headers", [])}
                    extra = [(k.lower().encode(), v.encode())
                             for k, v in decision.headers().items()
                             if k.lower().encode() not in present]
                    message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            elapsed_ms = (time.perf_counter() - t0) * 1000
            rt = scope["app"].state.runtime  # type: ignore[union-attr]
            endpoint = scope.get("path_template") or scope["path"]
            rt.metrics.latency.labels(endpoint, scope["method"], str(status)).observe(
                elapsed_ms / 1000)
            if scope["path"].startswith("/api/") and not state.get("usage_logged"):
                key = state.get("api_key")
                record = UsageRecord(
                    method=scope["method"], endpoint=scope["path"], status_code=status,
                    response_time_ms=elapsed_ms, user_id=state.get("user_id"),
                    api_key_id=key.id if key is not None else None,
                    query_params=state.get("query_params") or _query_string(scope),
                    error_code=state.get("error_code"), request_id=request_id)
                try:
                    await in_thread(rt.ledger.log_usage, record)
                except Exception:  # noqa: BLE001 - never turn a served response into an error
                    log.exception("could not write the usage log row")

    return middleware


def request_id_of(scope: Scope) -> str:
    """One id per request: the X-Request-Id header and a usage-log column, so support can find
    the request a customer quotes."""
    state: dict[str, Any] = scope.setdefault("state", {})  # type: ignore[assignment]
    return state.setdefault("request_id", uuid.uuid4().hex)


async def send_request_id(message: Message, scope: Scope) -> None:
    """before_send hook (every response, routed or not, errors included)."""
    if message["type"] == "http.response.start":
        message["headers"] = [*message.get("headers", []),
                              (b"x-request-id", request_id_of(scope).encode())]


def _query_string(scope: Scope) -> dict[str, Any]:
    qs = scope.get("query_string", b"")
    return {"query_string": qs.decode("latin-1")[:2000]} if qs else {}
