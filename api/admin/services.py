"""Admin service: the shared creditlake.ledger.admin functions, off the event loop."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from api.admin import schemas as s
from api.runtime import Runtime, in_thread
from creditlake.ledger import admin

T = TypeVar("T")


class AdminService:
    def __init__(self, rt: Runtime) -> None:
        self.ledger = rt.ledger
        self.keys = rt.keys

    async def _run(self, out: type[T], fn: Any, *args: Any, **kwargs: Any) -> T:
        data = await in_thread(fn, self.ledger, *args, **kwargs)
        return msgspec.convert({"status": "success", "data": data}, type=out)

    async def create_user(self, body: s.CreateUser) -> s.NewUserResponse:
        return await self._run(s.NewUserResponse, admin.create_user, body.email, body.credits,
                               expires_at=body.expires_at, reason=body.reason)

    async def add_credits(self, user: str, body: s.AddCredits) -> s.CreditsResponse:
        return await self._run(s.CreditsResponse, admin.add_credits, user, body.amount,
                               expires_at=body.expires_at, reason=body.reason)

    async def balance(self, user: str) -> s.BalanceResponse:
        return await self._run(s.BalanceResponse, admin.balance, user)

    async def list_users(self) -> s.UsersResponse:
        return await self._run(s.UsersResponse, admin.list_users)

    async def list_keys(self, user: str) -> s.KeysResponse:
        return await self._run(s.KeysResponse, admin.list_keys, user)

    async def create_key(self, user: str) -> s.NewKeyResponse:
        return await self._run(s.NewKeyResponse, admin.create_key, user)

    async def revoke_key(self, key_id: str) -> s.RevokedKeyResponse:
        out = await self._run(s.RevokedKeyResponse, admin.revoke_key, key_id)
        self.keys.forget(out.data.key_id)  # refused at once here, not after the key cache TTL
        return out

    async def usage(self, user: str, since: str | None) -> s.UsageResponse:
        return await self._run(s.UsageResponse, admin.usage, user, since=since)
