"""Envelopes shared by every resource (documented in the OpenAPI schema)."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec

from api.errors import ErrorBody


def error_spec(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorBody, description=description,
                        generate_examples=False)


AUTH_ERRORS = {
    400: error_spec("INVALID_QUERY / INVALID_REQUEST: bad input, named in the message"),
    401: error_spec("INVALID_API_KEY or API_KEY_REVOKED"),
    429: error_spec("RATE_LIMITED (Retry-After and X-RateLimit-* headers)"),
    503: error_spec("SERVICE_UNAVAILABLE: retry after Retry-After; nothing charged"),
}
ADMIN_ERRORS = {
    400: error_spec("INVALID_REQUEST"),
    401: error_spec("INVALID_ADMIN_TOKEN"),
    404: error_spec("NOT_FOUND: unknown user or key"),
}
