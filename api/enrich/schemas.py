"""Request and response shapes of the enrichment endpoints (input: creditlake EnrichInput)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from creditlake.query.enrich import MAX_BATCH, EnrichInput


class EnrichMatch(msgspec.Struct):
    confidence: float  # 0..1: 1 - prod(1 - weight) over matched fields, shared among ties
    matched_on: list[str]  # input fields the answer agrees with
    candidates: int  # distinct persons sharing an identifier with the input
    source: Literal["entity", "record"]  # golden record of a resolved entity, or one record
    entity_id: str | None = None
    cluster_size: int | None = None


class EnrichMetadata(msgspec.Struct):
    credits_used: int
    credits_remaining: int
    query_time_ms: float
    input_applied: dict[str, str]  # the input as read (the same rules as ingestion)


class EnrichResponse(msgspec.Struct):
    status: str
    data: dict[str, Any]
    match: EnrichMatch
    metadata: EnrichMetadata


class BulkRequest(msgspec.Struct, forbid_unknown_fields=True):
    requests: Annotated[list[EnrichInput], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class BulkItem(msgspec.Struct, omit_defaults=True):
    status: Literal["found", "not_found"]
    input_applied: dict[str, str]
    data: dict[str, Any] | None = None
    match: EnrichMatch | None = None


class BulkMetadata(msgspec.Struct):
    requested: int
    found: int
    credits_used: int
    credits_remaining: int
    query_time_ms: float


class BulkResponse(msgspec.Struct):
    status: str
    data: list[BulkItem]
    metadata: BulkMetadata
