"""/api/v1/admin/… (admin token): the same operations as `creditlake admin …`."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.params import JSONBody, PathParameter, QueryParameter

from api.admin import schemas as s
from api.admin.guards import requires_admin
from api.admin.services import AdminService
from api.runtime import runtime
from api.schemas import ADMIN_ERRORS, error_spec

USER = Annotated[str, PathParameter(description="User id or e-mail", max_length=320)]


class AdminController(Controller):
    path = "/api/v1/admin"
    tags = ["admin"]
    guards = [requires_admin]
    security = [{"AdminToken": []}]

    @staticmethod
    def _svc(request: Request) -> AdminService:
        return AdminService(runtime(request))

    @post("/users", status_code=201, summary="Create a user (returns the API key once)",
          responses={**ADMIN_ERRORS, 409: error_spec("CONFLICT: e-mail exists")})
    async def create_user(self, request: Request,
                          data: JSONBody[s.CreateUser]) -> s.NewUserResponse:
        return await self._svc(request).create_user(data)

    @get("/users", responses=ADMIN_ERRORS, summary="List users with their balances")
    async def list_users(self, request: Request) -> s.UsersResponse:
        return await self._svc(request).list_users()

    @get("/users/{user:str}/keys", responses=ADMIN_ERRORS,
         summary="List a user's keys (prefix, created, last used, revoked)")
    async def list_keys(self, request: Request, user: USER) -> s.KeysResponse:
        return await self._svc(request).list_keys(user)

    @post("/users/{user:str}/credits", status_code=201, responses=ADMIN_ERRORS,
          summary="Add credits (optional expiry and reason)")
    async def add_credits(self, request: Request, user: USER,
                          data: JSONBody[s.AddCredits]) -> s.CreditsResponse:
        return await self._svc(request).add_credits(user, data)

    @get("/users/{user:str}/balance", responses=ADMIN_ERRORS, summary="Balance and grants")
    async def balance(self, request: Request, user: USER) -> s.BalanceResponse:
        return await self._svc(request).balance(user)

    @post("/users/{user:str}/keys", status_code=201, responses=ADMIN_ERRORS,
          summary="Create an API key (shown once)")
    async def create_key(self, request: Request, user: USER) -> s.NewKeyResponse:
        return await self._svc(request).create_key(user)

    @post("/keys/{key_id:str}/revoke", status_code=200, responses=ADMIN_ERRORS,
          summary="Revoke an API key (effective immediately)")
    async def revoke_key(self, request: Request,
                         key_id: Annotated[str, PathParameter(max_length=64)]
                         ) -> s.RevokedKeyResponse:
        return await self._svc(request).revoke_key(key_id)

    @get("/users/{user:str}/usage", responses=ADMIN_ERRORS,
         summary="Usage analytics per day (requests, credits, records, errors, p50/p95)")
    async def usage(self, request: Request, user: USER,
                    since: Annotated[str | None, QueryParameter(max_length=40)] = None
                    ) -> s.UsageResponse:
        return await self._svc(request).usage(user, since)
