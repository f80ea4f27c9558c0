from __future__ import annotations

from litestar import Request

from api.query.services import QueryService
from api.runtime import runtime


def provide_query_service(request: Request) -> QueryService:
    return QueryService(runtime(request), request.state)
