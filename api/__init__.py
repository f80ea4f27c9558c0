"""The Litestar REST API (app layer): one package per resource (controllers, services,
schemas) plus shared plumbing (cache, rate limit, metrics, middleware, errors).

May import: the creditlake library. Not Dagster code (definitions, assets, checks,
resources) or cli."""
