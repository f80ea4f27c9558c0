from __future__ import annotations

from datetime import datetime

import msgspec


class Grant(msgspec.Struct):
    id: str
    amount: int
    remaining: int
    expires_at: datetime | None
    reason: str
    created_at: datetime
    expired: bool


class CreditsData(msgspec.Struct):
    user_id: str
    balance: int
    grants: list[Grant]


class CreditsResponse(msgspec.Struct):
    status: str
    data: CreditsData
