"""POST /api/v1/enrich (one person, 1 credit) and POST /api/v1/enrich/bulk (up to 100 lookups,
1 credit per person found): same key, rate limit, ledger, usage log and cache as /query."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, post
from litestar.openapi.spec import Example
from litestar.params import Body, HeaderParameter

from api.auth.guards import requires_api_key
from api.enrich.schemas import BulkRequest, BulkResponse, EnrichResponse
from api.enrich.services import EnrichService
from api.runtime import runtime
from api.schemas import PAID_ERRORS, error_spec
from creditlake.query.enrich import MAX_BATCH, EnrichInput

IDEMPOTENCY = Annotated[str | None, HeaderParameter(
    name="Idempotency-Key", required=False, max_length=255,
    description="Retries with the same key within 24 h replay the first answer")]
INPUT = Body(title="Who", description=(
    "Any of email, phone, user_id — or name with city or country. Values are read like "
    "ingested ones (e-mail case, phone formats; a national phone number with the country)."),
    examples=[Example(summary="by e-mail", value={"email": "Ann.Lee@Example.com"}),
              Example(summary="by a national phone number and its country",
                      value={"phone": "(415) 555-0123", "country": "US"}),
              Example(summary="by name and city", value={"name": "Ann Lee",
                                                         "city": "Springfield"}),
              Example(summary="by an entity id returned earlier (old ids keep working)",
                      value={"entity_id": "3f1c9a2e-0000-4000-8000-000000000001"})])
BULK = Body(title="Lookups", description=f"1..{MAX_BATCH} inputs; 1 credit per person found.",
            examples=[Example(summary="two lookups", value={"requests": [
                {"email": "ann.lee@example.com"}, {"phone": "+44 20 7946 0958"}]})])
NOT_FOUND = {404: error_spec("NOT_FOUND: no one matches; nothing charged",
                             ("NOT_FOUND", "No person matches this input; nothing was charged",
                              {}))}


class EnrichController(Controller):
    path = "/api/v1/enrich"
    tags = ["enrich"]
    guards = [requires_api_key]
    security = [{"ApiKeyAuth": []}]

    @post("/", status_code=200, responses={**PAID_ERRORS, **NOT_FOUND},
          summary="Find one person (1 credit when found)",
          description="The person an e-mail, phone or user id (or name with city or country) "
                      "identifies: the golden record where entity resolution has run, else "
                      "the best matching record, with a match confidence. 1 credit when a "
                      "person is returned; 404 NOT_FOUND (free) when no one matches; 400 "
                      "when the input identifies nobody.")
    async def enrich(self, request: Request, data: Annotated[EnrichInput, INPUT],
                     idempotency_key: IDEMPOTENCY = None) -> Response[EnrichResponse]:
        answer = await EnrichService(runtime(request), request.state).enrich(
            request.state.api_key, data, idempotency_key, request.url.path)
        return Response(answer.body, media_type="application/json", headers=answer.headers)  # type: ignore[arg-type]

    @post("/bulk", status_code=200, responses=PAID_ERRORS,
          summary=f"Up to {MAX_BATCH} lookups (1 credit per person found)",
          description="Each input answered in order with status found/not_found; charged "
                      "once for the persons found (nothing when none is). Any input that "
                      "identifies nobody makes the whole request a free 400 naming it.")
    async def bulk(self, request: Request, data: Annotated[BulkRequest, BULK],
                   idempotency_key: IDEMPOTENCY = None) -> Response[BulkResponse]:
        answer = await EnrichService(runtime(request), request.state).bulk(
            request.state.api_key, data.requests, idempotency_key, request.url.path)
        return Response(answer.body, media_type="application/json", headers=answer.headers)  # type: ignore[arg-type]
