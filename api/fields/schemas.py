"""Response shape of GET /api/v1/fields (built by creditlake.query.dictionary)."""

from __future__ import annotations

from typing import Any

import msgspec


class FieldInfo(msgspec.Struct):
    name: str
    type: str  # text | uuid | date | datetime | number | array
    description: str
    operators: list[str]
    sortable: bool
    nullable: bool
    example: Any
    values: list[str] | None  # the closed set of stored values (country, status)
    reading: str | None  # how a filter value is read (the ingestion rules)
    value_names: dict[str, str] | None = None  # country: ISO code -> English name
    synonyms: dict[str, list[str]] | None = None  # status: value -> accepted spellings


class FieldsMetadata(msgspec.Struct):
    operators: dict[str, str]  # operator -> meaning
    default_fields: list[str]
    max_limit: int
    credits: str


class FieldsResponse(msgspec.Struct):
    status: str
    data: list[FieldInfo]
    metadata: FieldsMetadata
