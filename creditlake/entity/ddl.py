"""ClickHouse tables written by entity resolution. Idempotent (IF NOT EXISTS), engine-neutral.

Both tables are ReplacingMergeTree keyed on their id with `resolved_at` as the version: an
incremental run re-writes only the rows it changes, readers use FINAL (or argMax) to see the
latest. An entity that disappears in a merge gets an `is_deleted = 1` golden row.
`entity_history` is the append-only log of merges and splits (run, model version);
`entity_aliases` maps every id that stopped naming an entity to the id that names it now (one
hop: a later merge re-points the older aliases), so a stored entity id keeps working.
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
    ("agreement", "String"),  # JSON: field -> how many members carry the chosen value
    ("match_probability", "Float64"),  # weakest member's best link (1.0 for one record)
    ("model_version", "LowCardinality(String)"),
    ("resolved_at", "DateTime64(3, 'UTC')"),
    ("is_deleted", "UInt8"),
)

ENTITY_TABLES = ("entities", "golden_records", "entity_features", "entity_features_new",
                 "entity_stage", "entity_runs", "entity_history", "entity_aliases")
# Added to golden_records after its first release (CREATE IF NOT EXISTS does not add them).
GOLDEN_ADDED = ("agreement", "match_probability")

HISTORY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("entity_id", "String"),  # merge: the absorbed id; split: the id split off
    ("other_id", "String"),  # merge: the surviving id; split: the id it split from
    ("event", "LowCardinality(String)"),  # merge | split
    ("run_id", "String"),
    ("model_version", "LowCardinality(String)"),
    ("resolved_at", "DateTime64(3, 'UTC')"),
)
ALIAS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("alias_id", "String"),
    ("current_id", "String"),
    ("run_id", "String"),
    ("resolved_at", "DateTime64(3, 'UTC')"),
)

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
        # The features of an incremental run's new records, while it runs (keyed by run):
        # the sets its candidate and term-frequency queries match entity_features against
        # are built from these few rows instead of a scan of the whole feature table.
        "entity_features_new": (
            f"CREATE TABLE IF NOT EXISTS {database}.entity_features_new (\n"
            f"    {columns_sql(FEATURE_COLUMNS)}\n) ENGINE = MergeTree ORDER BY (run_id, unique_id)"
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
        "entity_history": (
            f"CREATE TABLE IF NOT EXISTS {database}.entity_history (\n"
            f"    {columns_sql(HISTORY_COLUMNS)}\n)"
            " ENGINE = MergeTree ORDER BY (entity_id, resolved_at)"
        ),
        "entity_aliases": (
            f"CREATE TABLE IF NOT EXISTS {database}.entity_aliases (\n"
            f"    {columns_sql(ALIAS_COLUMNS)}\n)"
            " ENGINE = ReplacingMergeTree(resolved_at) ORDER BY alias_id"
        ),
    }


def migrate_entities(engine: Engine) -> list[str]:
    """Create the entity tables if missing; returns the table names."""
    tables = ensure_tables(engine, entity_ddl(engine.database))
    types = dict(GOLDEN_COLUMNS)
    for name in GOLDEN_ADDED:
        engine.command(f"ALTER TABLE {engine.database}.golden_records ADD COLUMN IF NOT EXISTS "
                       f"{name} {types[name]}")
    return tables
