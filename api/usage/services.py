from __future__ import annotations

from api.credits.services import utc
from api.runtime import Runtime, in_thread
from api.usage.schemas import UsageItem, UsageMetadata, UsageResponse, UsageTotals


class UsageService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def usage(self, user_id: str, since: str | None, until: str | None, limit: int,
                    offset: int) -> UsageResponse:
        items, totals = await in_thread(self.rt.ledger.usage, user_id, since=since, until=until,
                                        limit=limit, offset=offset)
        for i in items:
            i["created_at"] = utc(i["created_at"])
        return UsageResponse("success", [UsageItem(**i) for i in items],
                             UsageMetadata(UsageTotals(**totals), limit, offset))
