"""The API's documentation surface: `GET /` to the docs page, and the response headers every
operation carries, written into the OpenAPI document (Litestar documents headers only on
success responses; errors carry X-Request-Id, rate-limit and Retry-After headers too)."""

from __future__ import annotations

from litestar import get
from litestar.openapi.spec import OpenAPI, OpenAPIHeader, OpenAPIType, Schema
from litestar.response import Redirect

DOCS_PATH = "/docs"
PAID_PATHS = ("/api/v1/query", "/api/v1/enrich", "/api/v1/enrich/bulk")


@get("/", include_in_schema=False, status_code=302)
async def root() -> Redirect:
    """A browser (or a curious customer) at the base URL lands on the docs."""
    return Redirect(f"{DOCS_PATH}/", status_code=302)


def _header(description: str, kind: OpenAPIType = OpenAPIType.STRING,
            required: bool = False) -> OpenAPIHeader:
    return OpenAPIHeader(description=description, required=required, schema=Schema(type=kind))


REQUEST_ID = _header("Id of this request, also in the usage log (GET /api/v1/usage): quote it "
                     "to support.", required=True)
RATE_LIMIT = {
    "X-RateLimit-Limit": _header("Requests allowed per window for this key.",
                                 OpenAPIType.INTEGER),
    "X-RateLimit-Remaining": _header("Requests left in the current window.", OpenAPIType.INTEGER),
    "X-RateLimit-Reset": _header("Seconds until the window frees a request.",
                                 OpenAPIType.INTEGER),
}
RETRY_AFTER = _header("Seconds to wait before retrying.", OpenAPIType.INTEGER)
CREDITS = {
    "X-Credits-Used": _header("Credits this answer cost (on a replay: what the original "
                              "cost; nothing is charged again).", OpenAPIType.INTEGER),
    "X-Credits-Remaining": _header("Balance after this answer (on a replay: after the "
                                   "original).", OpenAPIType.INTEGER),
    "Idempotent-Replayed": _header("'true' when this is the stored answer of an earlier "
                                   "request with the same Idempotency-Key."),
}


def document_headers(doc: OpenAPI) -> OpenAPI:
    """Add the headers each response really carries to every operation of the document."""
    for path, item in (doc.paths or {}).items():
        for op in (item.get, item.post, item.put, item.delete, item.patch):
            if op is None or not op.responses:
                continue
            keyed = any("ApiKeyAuth" in s for s in op.security or [])
            for status, response in op.responses.items():
                if not hasattr(response, "description"):
                    continue  # a $ref
                headers = dict(response.headers or {})
                headers["X-Request-Id"] = REQUEST_ID
                if keyed and status not in ("401",):
                    headers.update(RATE_LIMIT)
                if status in ("429", "503"):
                    headers["Retry-After"] = RETRY_AFTER
                if path.rstrip("/") in PAID_PATHS and status == "200":
                    headers.update(CREDITS)
                response.headers = headers
    return doc
