"""GET /healthz (engine + ledger) and GET /metrics (Prometheus text format)."""

from __future__ import annotations

import msgspec
import sqlalchemy as sa
from litestar import Controller, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST

from api.runtime import in_thread, runtime


class Health(msgspec.Struct):
    status: str
    clickhouse: str
    ledger: str
    circuit: str  # the ClickHouse circuit breaker: closed | open | half_open


class HealthController(Controller):
    tags = ["ops"]

    @get("/healthz", summary="Checks ClickHouse and the ledger database",
         responses={503: ResponseSpec(data_container=Health, description="a dependency is down",
                                      generate_examples=False)})
    async def healthz(self, request: Request) -> Response[Health]:
        rt = runtime(request)
        ch = "ok"
        try:
            await rt.gate.run(lambda e: e.query_rows("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - report, don't raise
            ch = f"error: {type(exc).__name__}"

        def ping() -> None:
            with rt.ledger.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))

        ledger = "ok"
        try:
            await in_thread(ping)
        except Exception as exc:  # noqa: BLE001
            ledger = f"error: {type(exc).__name__}"
        ok = ch == "ok" and ledger == "ok"
        return Response(Health("ok" if ok else "error", ch, ledger,
                               str(rt.gate.breaker.state)),
                        status_code=200 if ok else 503)

    @get("/metrics", summary="Prometheus metrics", media_type=CONTENT_TYPE_LATEST)
    async def metrics(self, request: Request) -> bytes:
        return runtime(request).metrics.render()
