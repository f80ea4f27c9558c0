from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class UsageItem(msgspec.Struct):
    id: int
    created_at: datetime
    method: str
    endpoint: str
    status_code: int
    error_code: str | None
    request_id: str | None  # X-Request-Id of that response
    credits_used: int
    records_returned: int
    response_time_ms: float
    query_params: Any


class UsageTotals(msgspec.Struct):
    requests: int
    credits_used: int
    records_returned: int
    errors: int


class UsageMetadata(msgspec.Struct):
    totals: UsageTotals
    limit: int
    offset: int


class UsageResponse(msgspec.Struct):
    status: str
    data: list[UsageItem]
    metadata: UsageMetadata
