"""GET /api/v1/fields: the field dictionary (free; needs a key like every customer call)."""

from __future__ import annotations

import functools

import msgspec
from litestar import Controller, get

from api.auth.guards import requires_api_key
from api.fields.schemas import FieldsResponse
from api.schemas import AUTH_ERRORS
from creditlake.query import MAX_LIMIT
from creditlake.query.dictionary import OPERATORS, dictionary
from creditlake.query.fields import DEFAULT_FIELDS


@functools.cache
def _answer() -> FieldsResponse:  # the same for everyone, built once
    return msgspec.convert({
        "status": "success", "data": dictionary(),
        "metadata": {"operators": OPERATORS, "default_fields": list(DEFAULT_FIELDS),
                     "max_limit": MAX_LIMIT,
                     "credits": "POST /api/v1/query costs 1 + records_returned // 100; "
                                "POST /api/v1/enrich 1 per person found; this call and "
                                "/query/count are free"},
    }, type=FieldsResponse)


class FieldsController(Controller):
    path = "/api/v1/fields"
    tags = ["query"]
    guards = [requires_api_key]
    security = [{"ApiKeyAuth": []}]

    @get("/", responses=AUTH_ERRORS, summary="Field dictionary (free)",
         description="Every queryable field: its type, the operators it accepts, the stored "
                     "values where the set is closed (status, country, with the spellings "
                     "filters accept), an example, and how a filter value is read (the same "
                     "rules ingestion applies). Free; needs an API key.")
    async def fields(self) -> FieldsResponse:
        return _answer()
