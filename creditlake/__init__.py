"""creditlake, the engine-neutral library: format readers, header mapping and rules (with one
compiler per processing backend), the ingestion stages, ClickHouse access and DDL, the query
compiler, the credit ledger and entity resolution - plain functions, testable without Dagster
or the API.

May import: third-party libraries only. Never imports the app layer (cli, definitions,
assets, checks, resources, api): the contract in pyproject.toml ([tool.importlinter]) is
checked in CI.
"""
