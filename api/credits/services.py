from __future__ import annotations

from datetime import UTC, datetime

from api.credits.schemas import CreditsData, Grant
from api.runtime import Runtime, in_thread
from creditlake.ledger import GrantInfo


def utc(value: datetime | None) -> datetime | None:
    """Ledger times are naive UTC; the API speaks RFC 3339 (with Z)."""
    return value.replace(tzinfo=UTC) if value is not None else None


def grant_view(g: GrantInfo) -> Grant:
    return Grant(g.id, g.amount, g.remaining, utc(g.expires_at), g.reason,
                 utc(g.created_at), g.expired)  # type: ignore[arg-type]


class CreditsService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def credits(self, user_id: str) -> CreditsData:
        def load() -> CreditsData:
            grants = [grant_view(g) for g in self.rt.ledger.grants(user_id)]
            return CreditsData(user_id, self.rt.ledger.balance(user_id), grants)

        return await in_thread(load)
