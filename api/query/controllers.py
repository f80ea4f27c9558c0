"""POST /api/v1/query (paid) and POST /api/v1/query/count (free price check)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter, JSONBody

from api.auth.guards import requires_api_key
from api.query.dependencies import provide_query_service
from api.query.schemas import CountResponse, QueryResponse
from api.query.services import QueryService
from api.schemas import AUTH_ERRORS, error_spec
from creditlake.query import QueryRequest

QUERY_ERRORS = {
    **AUTH_ERRORS,
    402: error_spec("INSUFFICIENT_CREDITS: nothing was charged"),
    422: error_spec("IDEMPOTENCY_KEY_REUSED: same key, different query"),
    500: error_spec("QUERY_FAILED: the engine failed; nothing charged"),
    504: error_spec("QUERY_TIMEOUT: stopped after max_execution_time; nothing charged"),
}


class QueryController(Controller):
    path = "/api/v1/query"
    tags = ["query"]
    guards = [requires_api_key]
    security = [{"ApiKeyAuth": []}]
    dependencies = {"service": Provide(provide_query_service, sync_to_thread=False)}

    @post("/", status_code=200, responses=QUERY_ERRORS,
          summary="Query records (charged: 1 + returned // 100 credits)")
    async def query(
        self, request: Request, data: JSONBody[QueryRequest],
        service: NamedDependency[QueryService],
        idempotency_key: Annotated[str | None, HeaderParameter(
            name="Idempotency-Key", required=False, max_length=255,
            description="Retries with the same key within 24 h replay the first answer")] = None,
    ) -> Response[QueryResponse]:
        answer = await service.query(request.state.api_key, data, idempotency_key,
                                     request.url.path)
        return Response(answer.body, media_type="application/json", headers=answer.headers)  # type: ignore[arg-type]

    @post("/count", status_code=200, responses=AUTH_ERRORS,
          summary="Count matches and price a query (free)")
    async def count(self, request: Request, data: JSONBody[QueryRequest],
                    service: NamedDependency[QueryService]) -> CountResponse:
        return CountResponse("success", await service.price(request.state.api_key, data))
