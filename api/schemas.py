"""Envelopes shared by every resource (documented in the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from api.errors import ErrorBody


def error_spec(description: str, *examples: tuple[str, str, dict[str, Any]]) -> ResponseSpec:
    """An error response; examples are (code, message, extra fields of `error`)."""
    return ResponseSpec(
        data_container=ErrorBody, description=description, generate_examples=False,
        examples=[Example(summary=code, value={"status": "error", "error": {
            "code": code, "message": message, **extra}}) for code, message, extra in examples]
        or None)


AUTH_ERRORS = {
    400: error_spec("INVALID_QUERY / INVALID_REQUEST: bad input, named in the message; "
                    "nothing charged",
                    ("INVALID_QUERY", "country: cannot read 'Narnia' as a country; use an ISO "
                     "3166 code or an English name, e.g. 'US', 'USA' or 'United States' (GET "
                     "/api/v1/fields lists them)", {}),
                    ("INVALID_QUERY", "Unknown filter field: 'colour'", {})),
    401: error_spec("MISSING_API_KEY (no X-API-Key header), INVALID_API_KEY (unknown key) or "
                    "API_KEY_REVOKED",
                    ("MISSING_API_KEY", "Missing API key: send it in the X-API-Key header", {}),
                    ("INVALID_API_KEY", "Invalid API key", {}),
                    ("API_KEY_REVOKED", "API key has been revoked", {})),
    429: error_spec("RATE_LIMITED: wait Retry-After seconds (X-RateLimit-* say the window)",
                    ("RATE_LIMITED", "Rate limit exceeded: 600 requests per 60 s", {})),
    503: error_spec("SERVICE_UNAVAILABLE: retry after Retry-After; nothing charged",
                    ("SERVICE_UNAVAILABLE",
                     "The query engine is temporarily unavailable; retry later", {})),
}
PAID_ERRORS = {
    **AUTH_ERRORS,
    402: error_spec("INSUFFICIENT_CREDITS: the specification's message, plus `required` and "
                    "`available` as numbers; nothing charged",
                    ("INSUFFICIENT_CREDITS", "Insufficient credits. Required: 10, Available: 5",
                     {"required": 10, "available": 5})),
    422: error_spec("IDEMPOTENCY_KEY_REUSED: the Idempotency-Key was used with a different "
                    "body; nothing charged",
                    ("IDEMPOTENCY_KEY_REUSED",
                     "Idempotency-Key was already used for a different request", {})),
    503: error_spec("SERVICE_UNAVAILABLE (engine or ledger down or failing, circuit open) or "
                    "QUERY_TIMEOUT (stopped after max_execution_time): retry after "
                    "Retry-After; nothing charged",
                    ("SERVICE_UNAVAILABLE",
                     "The query engine is temporarily unavailable; retry later", {}),
                    ("QUERY_TIMEOUT", "The query took too long and was stopped; it was not "
                     "charged. Narrow the filters.", {})),
}
ADMIN_ERRORS = {
    400: error_spec("INVALID_REQUEST"),
    401: error_spec("INVALID_ADMIN_TOKEN"),
    404: error_spec("NOT_FOUND: unknown user or key"),
}
