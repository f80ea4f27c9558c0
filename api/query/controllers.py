"""POST /api/v1/query (paid) and POST /api/v1/query/count (free price check)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import Example
from litestar.params import Body, HeaderParameter

from api.auth.guards import requires_api_key
from api.query.dependencies import provide_query_service
from api.query.schemas import CountResponse, QueryResponse
from api.query.services import QueryService
from api.schemas import AUTH_ERRORS, PAID_ERRORS
from creditlake.query import QueryRequest

EXAMPLES = [
    Example(summary="US people, active, since 2020 (country and status in any spelling)",
            value={"filters": {"country": "USA", "status": "Active",
                               "created_date": {"gte": "2020-01-01"}},
                   "fields": ["email", "name", "phone", "created_date"],
                   "sort": {"field": "created_date", "order": "desc"}, "limit": 100}),
    Example(summary="A national phone number, read with the country filter",
            value={"filters": {"country": "GB", "phone": "020 7946 0958"}}),
    Example(summary="Operators", value={"filters": {
        "email": {"contains": "@example.com"}, "data_quality_score": {"gte": 0.8},
        "status": {"in": ["active", "pending"]}, "city": {"prefix": "San"}}}),
]
QUERY_BODY = Body(title="Query", examples=EXAMPLES, description=(
    "filters (field -> value | [values] | {operator: value}; GET /api/v1/fields lists fields, "
    "operators and values), fields, limit 1..10000, offset or cursor, sort {field, order}, "
    "resolve: 'entity' for one golden record per person."))


class QueryController(Controller):
    path = "/api/v1/query"
    tags = ["query"]
    guards = [requires_api_key]
    security = [{"ApiKeyAuth": []}]
    dependencies = {"service": Provide(provide_query_service, sync_to_thread=False)}

    @post("/", status_code=200, responses=PAID_ERRORS,
          summary="Query records (charged: 1 + returned // 100 credits)",
          description="Records matching the filters, one page at a time. Costs 1 + "
                      "returned // 100 credits (0 rows: 1), debited in the same transaction "
                      "that writes the usage log; refused requests cost nothing. "
                      "metadata.filters_applied shows how each filter value was read. "
                      "Headers: X-Credits-Used, X-Credits-Remaining, X-RateLimit-*, "
                      "X-Request-Id; Idempotency-Key makes retries safe (24 h).")
    async def query(
        self, request: Request, data: Annotated[QueryRequest, QUERY_BODY],
        service: NamedDependency[QueryService],
        idempotency_key: Annotated[str | None, HeaderParameter(
            name="Idempotency-Key", required=False, max_length=255,
            description="Retries with the same key within 24 h replay the first answer")] = None,
    ) -> Response[QueryResponse]:
        answer = await service.query(request.state.api_key, data, idempotency_key,
                                     request.url.path)
        return Response(answer.body, media_type="application/json", headers=answer.headers)  # type: ignore[arg-type]

    @post("/count", status_code=200, responses=AUTH_ERRORS,
          summary="Count matches and price a query (free)",
          description="The same body as /api/v1/query: how many records match, how many the "
                      "page would return and what it would cost now. Free.")
    async def count(self, request: Request, data: Annotated[QueryRequest, QUERY_BODY],
                    service: NamedDependency[QueryService]) -> CountResponse:
        return CountResponse("success", await service.price(request.state.api_key, data))
