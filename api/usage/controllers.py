"""GET /api/v1/usage: the caller's own usage log (newest first) and totals."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get
from litestar.params import QueryParameter

from api.auth.guards import requires_api_key
from api.runtime import runtime
from api.schemas import AUTH_ERRORS
from api.usage.schemas import UsageResponse
from api.usage.services import UsageService


class UsageController(Controller):
    path = "/api/v1/usage"
    tags = ["account"]
    guards = [requires_api_key]
    security = [{"ApiKeyAuth": []}]

    @get("/", responses=AUTH_ERRORS, summary="Usage log and totals")
    async def usage(
        self, request: Request,
        since: Annotated[str | None, QueryParameter(
            description="ISO date/time, inclusive", max_length=40)] = None,
        until: Annotated[str | None, QueryParameter(
            description="ISO date/time, exclusive", max_length=40)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        offset: Annotated[int, QueryParameter(ge=0, le=1_000_000)] = 0,
    ) -> UsageResponse:
        return await UsageService(runtime(request)).usage(request.state.user_id, since, until,
                                                          limit, offset)
