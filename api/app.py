"""Litestar app factory: `create_app(settings, engine_provider=...)`.

Nothing touches ClickHouse at import or construction time: the engine is opened lazily on the
first query through EngineGate. engine_provider is an Engine object (used as is, not closed)
or a callable returning one (default: creditlake.clickhouse.open_engine(settings)).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from api.admin.controllers import AdminController
from api.auth.keys import KeyCache
from api.body_guard import body_guard
from api.breaker import Breaker, GuardedGate
from api.cache import ResultCache
from api.config import ApiConfig
from api.credits.controllers import CreditsController
from api.docs import document_headers, root
from api.engine_gate import EngineGate, EngineProvider
from api.enrich.controllers import EnrichController
from api.errors import EXCEPTION_HANDLERS
from api.fields.controllers import FieldsController
from api.health.controllers import HealthController
from api.metrics import Metrics
from api.middleware import observe_middleware, send_request_id
from api.query.controllers import QueryController
from api.ratelimit import RateLimiter
from api.runtime import Runtime, in_thread
from api.usage.controllers import UsageController
from creditlake.config import Settings, load_settings
from creditlake.ledger import Ledger

log = logging.getLogger(__name__)
API_VERSION = "1.0.0"
# Swagger UI served from the installed swagger-ui-bundle-v2 wheel, not a CDN: /docs works offline
DOCS_ASSETS = "/docs-assets"


def create_app(settings: Settings | None = None, engine_provider: EngineProvider | None = None,
               *, config: ApiConfig | None = None, ledger: Ledger | None = None) -> Litestar:
    settings = settings or load_settings()
    config = config or ApiConfig.from_settings(settings)

    def default_provider():  # noqa: ANN202 - lazily imported: keep import time engine-free
        from creditlake.clickhouse import open_engine
        return open_engine(settings)

    def ensure_schema(engine) -> None:  # noqa: ANN001
        if config.ensure_schema:
            from creditlake.clickhouse.ddl import migrate
            from creditlake.entity.ddl import migrate_entities
            migrate(engine)
            migrate_entities(engine)  # golden_records: "resolve": "entity" before any run

    owns_ledger = ledger is None

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        led = ledger or Ledger(settings.database_url)
        client = (aioredis.Redis.from_url(settings.redis_url, socket_timeout=0.5,
                                          socket_connect_timeout=0.5)
                  if settings.redis_url else None)
        metrics = Metrics()
        breaker = Breaker(config.breaker_failures, config.breaker_reset_s,
                          config.engine_timeout_s, on_change=metrics.circuit_changed)
        gate = GuardedGate(EngineGate(engine_provider or default_provider,
                                      settings.clickhouse_database, on_open=ensure_schema),
                           breaker)
        app.state.runtime = Runtime(
            settings=settings, config=config, ledger=led, keys=KeyCache(led, config.key_cache_s),
            gate=gate,
            limiter=RateLimiter(client, config.rate_limit, config.rate_window_s,
                                config.redis_prefix, config.redis_retry_s),
            cache=ResultCache(client, config.cache_ttl_s, config.redis_prefix,
                              config.redis_retry_s),
            metrics=metrics, redis=client)
        app.state.config = config
        from creditlake.query.normalize import warm_up

        await in_thread(warm_up)  # the first filter value read would otherwise pay it
        document_headers(app.openapi_schema)  # before the document is first served
        try:
            yield
        finally:
            gate.close()
            if client is not None:
                await client.aclose()
            if owns_ledger:
                led.close()

    return Litestar(
        route_handlers=[QueryController, EnrichController, FieldsController, CreditsController,
                        UsageController,
                        AdminController,
                        HealthController, root,
                        create_static_files_router(path=DOCS_ASSETS,
                                                   directories=[swagger_ui_path])],
        lifespan=[lifespan],
        middleware=[observe_middleware,
                    body_guard(settings.api_max_body_bytes, settings.api_max_body_depth)],
        before_send=[send_request_id],
        exception_handlers=EXCEPTION_HANDLERS,
        state=State({"config": config}),
        openapi_config=OpenAPIConfig(
            title="creditlake API", version=API_VERSION,
            description="Query contact records; each query costs 1 + returned // 100 credits.",
            path="/docs",
            render_plugins=[SwaggerRenderPlugin(
                path="/", js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js"),
                JsonRenderPlugin()],
            components=Components(security_schemes={
                "ApiKeyAuth": SecurityScheme(type="apiKey", name="X-API-Key",
                                             security_scheme_in="header"),
                "AdminToken": SecurityScheme(type="http", scheme="bearer"),
            }),
        ),
        debug=False,
    )


def app_from_env() -> Litestar:
    """ASGI factory for `uvicorn --factory api.app:app_from_env`."""
    return create_app(load_settings())
