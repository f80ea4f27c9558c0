"""The query request as the API receives it (msgspec Structs, also used for the OpenAPI schema).

Types are deliberately loose where the compiler gives better messages than a type error
(`filters` values): every value is checked in compiler.py against the field whitelist.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

MAX_LIMIT = 10_000
MAX_OFFSET = 1_000_000


class SortSpec(msgspec.Struct, forbid_unknown_fields=True):
    field: str
    order: Literal["asc", "desc"] = "asc"


class QueryRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """POST /api/v1/query body. `filters`: field -> value | [values] | {operator: value}."""

    filters: dict[str, Any] = msgspec.field(default_factory=dict)
    fields: list[str] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)] = 100
    offset: Annotated[int, msgspec.Meta(ge=0, le=MAX_OFFSET)] = 0
    sort: SortSpec | None = None
    cursor: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    # "entity": one golden record per resolved entity (creditlake.entity.query), + entity_id
    resolve: Literal["entity"] | None = None


def parse_request(payload: dict[str, Any] | bytes | str) -> QueryRequest:
    """Validate a raw payload (CLI, tests) the way the API does."""
    from creditlake.query.errors import InvalidQuery

    try:
        if isinstance(payload, bytes | str):
            return msgspec.json.decode(payload, type=QueryRequest)
        return msgspec.convert(payload, type=QueryRequest)
    except msgspec.ValidationError as exc:
        raise InvalidQuery(str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise InvalidQuery(f"Body is not valid JSON: {exc}") from exc
