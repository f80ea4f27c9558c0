"""GET /api/v1/credits: balance and the grants (with expiry) that make it up."""

from __future__ import annotations

from litestar import Controller, Request, get

from api.auth.guards import requires_api_key
from api.credits.schemas import CreditsResponse
from api.credits.services import CreditsService
from api.runtime import runtime
from api.schemas import AUTH_ERRORS


class CreditsController(Controller):
    path = "/api/v1/credits"
    tags = ["account"]
    guards = [requires_api_key]
    security = [{"ApiKeyAuth": []}]

    @get("/", responses=AUTH_ERRORS, summary="Balance and credit grants")
    async def credits(self, request: Request) -> CreditsResponse:
        data = await CreditsService(runtime(request)).credits(request.state.user_id)
        return CreditsResponse("success", data)
