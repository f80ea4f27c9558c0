"""Response shapes of the query endpoints (the request is creditlake.query.QueryRequest)."""

from __future__ import annotations

from typing import Any

import msgspec


class QueryMetadata(msgspec.Struct):
    total_records: int
    returned: int
    page: int
    credits_used: int
    credits_remaining: int
    query_time_ms: float
    next_cursor: str | None = None
    # how each filter was read, e.g. {"country": ["US"]} for "USA"
    filters_applied: dict[str, Any] = msgspec.field(default_factory=dict)


class QueryResponse(msgspec.Struct):
    status: str
    data: list[dict[str, Any]]
    metadata: QueryMetadata


class CountData(msgspec.Struct):
    total_records: int
    would_return: int
    credits_required: int
    credits_available: int
    filters_applied: dict[str, Any] = msgspec.field(default_factory=dict)


class CountResponse(msgspec.Struct):
    status: str
    data: CountData
