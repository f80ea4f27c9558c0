"""The one mapping from domain errors to HTTP error envelopes.

Envelope: {"status": "error", "error": {"code": CODE, "message": MESSAGE}}. Services raise
domain errors (ledger, query, engine, rate limit); only this module knows HTTP.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from sqlalchemy import exc as sa_exc

from api.breaker import CircuitOpen
from creditlake.clickhouse.base import EngineError, EngineUnavailable
from creditlake.ledger import errors as le
from creditlake.query.enrich import NoMatch
from creditlake.query.errors import InvalidQuery
from creditlake.redact import redact

log = logging.getLogger(__name__)
QUERY_PATHS = ("/api/v1/query", "/api/v1/enrich")  # body errors there are INVALID_QUERY


class ApiError(Exception):
    """An API-level domain error that is not a ledger/query/engine error."""

    status_code = 400
    code = "BAD_REQUEST"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class RateLimited(ApiError):
    status_code = 429
    code = "RATE_LIMITED"


class AdminAuthError(ApiError):
    status_code = 401
    code = "INVALID_ADMIN_TOKEN"


class ErrorDetail(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    required: int | None = None  # INSUFFICIENT_CREDITS: credits the request needs
    available: int | None = None  # INSUFFICIENT_CREDITS: credits the caller has


class ErrorBody(msgspec.Struct):
    status: str
    error: ErrorDetail


# (exception class, status, code); first match wins, so subclasses come first.
_MAP: tuple[tuple[type[BaseException], int, str], ...] = (
    (InvalidQuery, 400, "INVALID_QUERY"),
    (le.MissingApiKey, 401, "MISSING_API_KEY"),
    (le.InvalidApiKey, 401, "INVALID_API_KEY"),
    (le.ApiKeyRevoked, 401, "API_KEY_REVOKED"),
    (le.InsufficientCredits, 402, "INSUFFICIENT_CREDITS"),
    (NoMatch, 404, "NOT_FOUND"),
    (le.UserNotFound, 404, "NOT_FOUND"),
    (le.KeyNotFound, 404, "NOT_FOUND"),
    (le.UserExists, 409, "CONFLICT"),
    (le.IdempotencyConflict, 422, "IDEMPOTENCY_KEY_REUSED"),
    (le.InvalidInput, 400, "INVALID_REQUEST"),
    (EngineUnavailable, 503, "SERVICE_UNAVAILABLE"),
    (EngineError, 503, "SERVICE_UNAVAILABLE"),  # a failing engine is not the client's fault
    # the ledger unreachable: paid requests fail closed (nothing served, nothing charged)
    (sa_exc.OperationalError, 503, "SERVICE_UNAVAILABLE"),
    (sa_exc.InterfaceError, 503, "SERVICE_UNAVAILABLE"),
    (sa_exc.TimeoutError, 503, "SERVICE_UNAVAILABLE"),
)


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None, **detail: int) -> Response[bytes]:
    """`detail`: machine-readable numbers beside the message (402: required, available)."""
    body = msgspec.json.encode({"status": "error",
                                "error": {"code": code, "message": message, **detail}})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def classify(exc: BaseException) -> tuple[int, str, str]:
    """(status, code, message) for any exception the app can raise."""
    if isinstance(exc, ApiError):
        return exc.status_code, exc.code, exc.message
    for cls, status, code in _MAP:
        if isinstance(exc, cls):
            if isinstance(exc, CircuitOpen):  # its own words: why the engine was not tried
                return status, code, f"{exc}; nothing was charged; retry later"
            if isinstance(exc, EngineUnavailable):
                return status, code, "The query engine is temporarily unavailable; retry later"
            if isinstance(exc, EngineError):
                if "TIMEOUT_EXCEEDED" in str(exc) or "Timeout exceeded" in str(exc):
                    return 503, "QUERY_TIMEOUT", ("The query took too long and was stopped; it "
                                                 "was not charged. Narrow the filters.")
                return status, code, ("The query failed inside the engine; it was not "
                                      "charged; retry later")
            if isinstance(exc, sa_exc.SQLAlchemyError):
                return status, code, ("The credit ledger is unreachable; nothing was served "
                                      "or charged; retry later")
            return status, code, str(exc)
    if isinstance(exc, ValidationException):
        return 400, "", _validation_message(exc)
    if isinstance(exc, NotFoundException):
        return 404, "NOT_FOUND", "Not found"
    if isinstance(exc, MethodNotAllowedException):
        return 405, "METHOD_NOT_ALLOWED", "Method not allowed"
    if isinstance(exc, NotAuthorizedException):
        return 401, "UNAUTHORIZED", str(exc.detail)
    if isinstance(exc, PermissionDeniedException):
        return 403, "FORBIDDEN", str(exc.detail)
    if isinstance(exc, HTTPException):  # e.g. a body that is not JSON: 400, code by route
        return exc.status_code, "" if exc.status_code == 400 else "HTTP_ERROR", str(exc.detail)
    return 500, "INTERNAL_ERROR", "Internal server error"


def _validation_message(exc: ValidationException) -> str:
    parts = [str(exc.detail)]
    extra: Any = exc.extra
    if isinstance(extra, list):
        for item in extra[:5]:
            if isinstance(item, dict):
                parts.append(f"{item.get('key') or item.get('source') or ''}: "
                             f"{item.get('message', '')}".strip(": "))
    return "; ".join(p for p in parts if p)[:500]


def handle_exception(request: Request, exc: Exception) -> Response[bytes]:
    status, code, message = classify(exc)
    if status == 400 and not code:  # a request body/parameter that failed type validation
        code = "INVALID_QUERY" if request.url.path.startswith(QUERY_PATHS) else (
            "INVALID_REQUEST")
    headers: dict[str, str] = {}
    if isinstance(exc, ApiError):
        headers.update(exc.headers)
    if status == 503:
        headers.setdefault("Retry-After", str(request.app.state.config.retry_after_s))
    if status >= 500:
        # the traceback as text, credentials in URLs (an engine or ledger DSN) hidden
        log.error("request failed: %s %s\n%s", request.method, request.url.path,
                  redact("".join(traceback.format_exception(exc))).rstrip())
    request.state.error_code = code
    detail = ({"required": exc.required, "available": exc.available}
              if isinstance(exc, le.InsufficientCredits) else {})
    return error_response(status, code, message, headers, **detail)


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {Exception: handle_exception}
