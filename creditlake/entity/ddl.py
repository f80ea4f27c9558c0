"""ClickHouse tables written by entity resolution. Idempotent (IF NOT EXISTS), engine-neutral.

Both tables are ReplacingMergeTree keyed on their id with `resolved_at` as the version: an
incremental run re-writes only the rows it changes, readers use FINAL (or argMax) to see the
latest. An entity that disappears in a merge gets an `is_deleted = 1` golden row.
"""

from __future__ import annotations

from creditlake.clickhouse.base import Engine
from creditlake.clickhouse.ddl import columns_sql, ensure_tables

ENTITY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("record_id", "String"),
    ("entity_id", "String"),
    ("cluster_size", "UInt32"),
    ("match_probability", "Float64"),  # best edge into its cluster (1.0 for singletons)
    ("model_version", "LowCardinality(String)"),
    ("resolved_at", "DateTime64(3, 'UTC')"),
)

# Golden record: the master-schema fields chosen by survivorship, so an API query can read
# golden_records with the same filters as records, plus entity bookkeeping.
GOLDEN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("entity_id", "String"),
    ("id", "String"),  # the record whose values won most fields (the representative)
    ("user_id", "String"),
    ("email", "String"),
    ("name", "String"),
    ("phone", "String"),
    ("address", "String"),
    ("city", "String"),
    ("country", "LowCardinality(String)"),
    ("created_date", "Nullable(Date)"),
    ("status", "LowCardinality(String)"),
    ("source_file", "String"),
    ("ingested_at", "DateTime64(3, 'UTC')"),
    ("data_quality_score", "Float32"),
    # From the representative record, so golden rows carry every master-schema column.
    ("record_hash", "String"),
    ("metadata", "String"),
    ("validation_errors", "Array(String)"),
    ("cluster_size", "UInt32"),
    ("record_ids", "Array(String)"),
    ("sources", "String"),  # JSON: field -> id of the record its value came from
    ("model_version", "LowCardinality(String)"),
    ("resolved_at", "DateTime64(3, 'UTC')"),
    ("is_deleted", "UInt8"),
)

ENTITY_TABLES = ("entities", "golden_records", "entity_features", "entity_stage", "entity_runs")

# The prepared (normalized) features of every resolved record: incremental runs select the
# existing records that share a blocking key with new ones here, in ClickHouse, and compute
# term frequencies from it, instead of re-reading and re-scoring the whole table.
FEATURE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("unique_id", "String"),
    ("first_name", "Nullable(String)"),
    ("surname", "Nullable(String)"),
    ("dob", "Nullable(String)"),
    ("email", "Nullable(String)"),
    ("phone", "Nullable(String)"),
    ("address", "Nullable(String)"),
    ("city", "Nullable(String)"),
    ("postcode", "Nullable(String)"),
    ("user_id", "Nullable(String)"),
    ("run_id", "String"),
)

RUN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "String"),
    ("mode", "LowCardinality(String)"),  # full | incremental
    ("model_version", "LowCardinality(String)"),
    ("records_in", "UInt64"),
    ("pairs_scored", "UInt64"),
    ("entities_changed", "UInt64"),
    ("seconds", "Float64"),
    ("summary", "String"),  # JSON: cluster size distribution, examples
    ("resolved_at", "DateTime64(3, 'UTC')"),
)


def entity_ddl(database: str) -> dict[str, str]:
    return {
        "entities": (
            f"CREATE TABLE IF NOT EXISTS {database}.entities (\n"
            f"    {columns_sql(ENTITY_COLUMNS)},\n"
            "    INDEX idx_entity entity_id TYPE bloom_filter(0.01) GRANULARITY 4\n)"
            " ENGINE = ReplacingMergeTree(resolved_at) ORDER BY record_id"
        ),
        "golden_records": (
            f"CREATE TABLE IF NOT EXISTS {database}.golden_records (\n"
            f"    {columns_sql(GOLDEN_COLUMNS)},\n"
            "    INDEX idx_email email TYPE bloom_filter(0.01) GRANULARITY 4,\n"
            "    INDEX idx_phone phone TYPE bloom_filter(0.01) GRANULARITY 4\n)"
            " ENGINE = ReplacingMergeTree(resolved_at, is_deleted) ORDER BY entity_id"
        ),
        "entity_features": (
            f"CREATE TABLE IF NOT EXISTS {database}.entity_features (\n"
            f"    {columns_sql(FEATURE_COLUMNS)}\n) ENGINE = ReplacingMergeTree ORDER BY unique_id"
        ),
        # Id lists an incremental run hands to ClickHouse for joins (instead of huge IN lists).
        "entity_stage": (
            f"CREATE TABLE IF NOT EXISTS {database}.entity_stage (\n"
            "    run_id String,\n    record_id String\n)"
            " ENGINE = MergeTree ORDER BY (run_id, record_id)"
        ),
        "entity_runs": (
            f"CREATE TABLE IF NOT EXISTS {database}.entity_runs (\n"
            f"    {columns_sql(RUN_COLUMNS)}\n)"
            " ENGINE = MergeTree ORDER BY resolved_at"
        ),
    }


def migrate_entities(engine: Engine) -> list[str]:
    """Create the entity tables if missing; returns the table names."""
    return ensure_tables(engine, entity_ddl(engine.database))
