from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from creditlake.ledger.service import MAX_GRANT

Amount = Annotated[int, msgspec.Meta(ge=1, le=MAX_GRANT)]


class CreateUser(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
    credits: Annotated[int, msgspec.Meta(ge=0, le=MAX_GRANT)] = 0
    expires_at: datetime | None = None
    reason: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class AddCredits(msgspec.Struct, forbid_unknown_fields=True):
    amount: Amount
    expires_at: datetime | None = None
    reason: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class GrantOut(msgspec.Struct):
    id: str
    amount: int
    remaining: int
    expires_at: str | None
    reason: str
    created_at: str
    expired: bool


class NewUserOut(msgspec.Struct):
    user_id: str
    email: str
    balance: int
    api_key: str
    key_id: str
    key_prefix: str


class CreditsOut(msgspec.Struct):
    user_id: str
    email: str
    grant: GrantOut
    balance: int


class BalanceOut(msgspec.Struct):
    user_id: str
    email: str
    balance: int
    grants: list[GrantOut]


class NewKeyOut(msgspec.Struct):
    user_id: str
    key_id: str
    api_key: str
    key_prefix: str


class RevokedKeyOut(msgspec.Struct):
    key_id: str
    user_id: str
    key_prefix: str
    revoked_at: str | None


class DayOut(msgspec.Struct):
    day: str
    requests: int
    credits_used: int
    records_returned: int
    errors: int
    p50_ms: float
    p95_ms: float


class UsageTotalsOut(msgspec.Struct):
    requests: int
    credits_used: int
    records_returned: int
    errors: int


class UsageOut(msgspec.Struct):
    user_id: str
    email: str
    since: str | None
    totals: UsageTotalsOut
    days: list[DayOut]



class NewUserResponse(msgspec.Struct):
    status: str
    data: NewUserOut


class CreditsResponse(msgspec.Struct):
    status: str
    data: CreditsOut


class BalanceResponse(msgspec.Struct):
    status: str
    data: BalanceOut


class NewKeyResponse(msgspec.Struct):
    status: str
    data: NewKeyOut


class RevokedKeyResponse(msgspec.Struct):
    status: str
    data: RevokedKeyOut


class UsageResponse(msgspec.Struct):
    status: str
    data: UsageOut


class UserOut(msgspec.Struct):
    user_id: str
    email: str
    created_at: str
    balance: int


class UsersOut(msgspec.Struct):
    users: list[UserOut]


class UsersResponse(msgspec.Struct):
    status: str
    data: UsersOut


class KeyOut(msgspec.Struct):
    key_id: str
    key_prefix: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


class KeysOut(msgspec.Struct):
    user_id: str
    email: str
    keys: list[KeyOut]


class KeysResponse(msgspec.Struct):
    status: str
    data: KeysOut
