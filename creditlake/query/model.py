"""The query request as the API receives it (msgspec Structs, also used for the OpenAPI schema).

Types are deliberately loose where the compiler gives better messages than a type error
(`filters` values): every value is checked in compiler.py against the field whitelist.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from creditlake.query.dictionary import filters_schema
from creditlake.query.fields import FIELDS, SORTABLE

MAX_LIMIT = 10_000
MAX_OFFSET = 1_000_000


def _doc(description: str, examples: list[Any] | None = None, **extra: Any) -> msgspec.Meta:
    """OpenAPI text for a field (read by Litestar from msgspec's extra_json_schema)."""
    return msgspec.Meta(extra_json_schema={"description": description,
                                           **({"examples": examples} if examples else {}),
                                           **({"extra": extra} if extra else {})})


class SortSpec(msgspec.Struct, forbid_unknown_fields=True):
    field: Annotated[str, _doc("A sortable field (GET /api/v1/fields says which)",
                               ["created_date"], enum=list(SORTABLE))]
    order: Literal["asc", "desc"] = "asc"


class QueryRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """POST /api/v1/query body. `filters`: field -> value | [values] | {operator: value}."""

    filters: Annotated[dict[str, Any], _doc(
        "Field -> a value (equality), a list (any of) or {operator: value}. Values are read "
        "by the same rules as ingested data ('USA' -> 'US', 'Active' -> 'active', national "
        "phones with the country filter -> E.164); metadata.filters_applied shows how. "
        "Unknown fields, operators or unreadable values: 400 INVALID_QUERY.",
        [{"country": "USA", "status": "active", "created_date": {"gte": "2020-01-01"}},
         {"email": "Ann.Lee@Example.com"},
         {"country": "GB", "phone": "020 7946 0958"}],
        **filters_schema())] = msgspec.field(default_factory=dict)
    fields: Annotated[list[str], _doc("Fields to return (default: all)", [["email", "name"]],
                                      items={"type": "string", "enum": list(FIELDS)},
                                      minItems=1)] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)] = 100
    offset: Annotated[int, msgspec.Meta(ge=0, le=MAX_OFFSET)] = 0
    sort: SortSpec | None = None
    cursor: Annotated[str, msgspec.Meta(max_length=4096), _doc(
        "metadata.next_cursor of the previous page (keyset paging; same filters and sort)")
    ] | None = None
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
