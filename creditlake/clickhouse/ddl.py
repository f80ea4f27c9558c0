"""ClickHouse DDL for the embedded/single-server engine. Idempotent: running twice changes nothing.

The cluster variant (Replicated* + Distributed) is generated from the same column list.
"""

from __future__ import annotations

from itertools import pairwise

import pyarrow as pa

from creditlake.clickhouse.base import Engine
from creditlake.schema import RECORD_COLUMNS

# ORDER BY serves the API's filters (country, then created_date ranges) and ends in the
# dedup key. status is mutable, so it stays out of the sorting/dedup key; a set skip index
# serves status filters instead. ReplacingMergeTree(ingested_at) is a safety net: the loader
# already refuses a record_hash that exists (see ingest/load.py, against record_hashes).
RECORDS_ORDER_BY = "(country, created_date, record_hash)"
RECORDS_SETTINGS = "index_granularity = 8192, allow_nullable_key = 1"
RECORDS_INDEXES = (
    "INDEX idx_email email TYPE bloom_filter(0.01) GRANULARITY 4",
    "INDEX idx_phone phone TYPE bloom_filter(0.01) GRANULARITY 4",
    "INDEX idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 4",
    "INDEX idx_hash record_hash TYPE bloom_filter(0.001) GRANULARITY 4",
    "INDEX idx_status status TYPE set(16) GRANULARITY 4",
)

# Internal columns of `records` beyond the master schema (never exposed by the API):
# ingest_key ties each row to the partition (file version) that loaded it, so re-running a
# partition replaces exactly its own rows.
RECORDS_INTERNAL_COLUMNS = (("ingest_key", "LowCardinality(String)"),)

REJECTED_COLUMNS = (
    ("source_file", "LowCardinality(String)"),
    ("partition_key", "String"),
    ("source_row", "UInt64"),
    ("stage", "LowCardinality(String)"),  # read (parser refused it) | validate (failed checks)
    ("raw_row", "String"),
    ("reasons", "Array(String)"),
    ("rejected_at", "DateTime64(3, 'UTC')"),
)

INGESTION_LOG_COLUMNS = (
    ("partition_key", "String"),
    ("source_file", "String"),
    ("format", "LowCardinality(String)"),
    ("rows_read", "UInt64"),
    ("loaded", "UInt64"),
    ("duplicates", "UInt64"),
    ("rejected", "UInt64"),
    ("held", "UInt64"),  # valid rows still in staging (blocked / not yet loaded)
    ("seconds", "Float64"),
    ("status", "LowCardinality(String)"),  # ingest.manifest.Status
    ("message", "String"),
    ("mapping", "String"),  # JSON: source column -> master field
    ("quality_mean", "Float32"),
    ("started_at", "DateTime64(3, 'UTC')"),
    ("finished_at", "DateTime64(3, 'UTC')"),
)


# record_hashes: every hash in `records` once more, as 16 bytes ordered by hash, with the
# ingest_key that loaded it. The load's "which of these hashes are loaded?" and the hash
# check read it instead of records' 33-byte strings in (country, date) order: 1M hashes
# against 20M loaded rows, 0.7-0.9 s instead of 2.7 s, and a few granules for a small
# file. The materialized view HASHES_VIEW fills it on every insert into records; the load
# deletes from it whatever it deletes from records (ingest/load.py, delete_loaded).
HASH_KEY = "reinterpretAsUInt128(unhex(record_hash))"
HASH_HEX = "lower(hex(reinterpretAsFixedString(hash)))"  # record_hashes.hash -> record_hash
# The top 16 bits of HASH_KEY (little-endian: record_hash's last four hex digits): a big
# file's load chunks are ranges of it (ingest/load.py), so a range of record_hashes.hash
# and a stage table ordered by it read only their share.
HASH_BUCKET_BITS = 16
HASH_BUCKET = f"toUInt16(bitShiftRight({HASH_KEY}, {128 - HASH_BUCKET_BITS}))"
WHOLE_RANGE = (0, 1 << HASH_BUCKET_BITS)
RECORD_HASHES_COLUMNS = (("hash", "UInt128"), ("ingest_key", "LowCardinality(String)"))
HASHES_VIEW = "records_to_hashes"


def hash_ranges(rows: int, per_range: int) -> list[tuple[int, int]]:
    """[lo, hi) ranges of HASH_BUCKET that split `rows` hashes into about `per_range` each
    (MD5 spreads them evenly): [WHOLE_RANGE] when they fit in one."""
    n = min(max(-(-rows // per_range), 1), WHOLE_RANGE[1])
    return list(pairwise(i * WHOLE_RANGE[1] // n for i in range(n + 1)))


def bucket_range_sql(lo: int, hi: int) -> str:
    """Rows of a table with record_hash (a stage table) whose HASH_BUCKET is in [lo, hi)."""
    if (lo, hi) == WHOLE_RANGE:
        return "1"
    return f"{HASH_BUCKET} >= {lo} AND {HASH_BUCKET} < {hi}"


def hash_range_sql(lo: int, hi: int) -> str:
    """record_hashes.hash values whose HASH_BUCKET is in [lo, hi), as a condition its
    primary key prunes by ('1' for the whole range)."""
    if (lo, hi) == WHOLE_RANGE:
        return "1"
    shift = 128 - HASH_BUCKET_BITS
    low = f"hash >= toUInt128('{lo << shift}')"
    return low if hi == WHOLE_RANGE[1] else f"{low} AND hash < toUInt128('{hi << shift}')"


def hashes_view_ddl(database: str, *, source: str = "records", target: str = "record_hashes",
                    on_cluster: str = "") -> str:
    """The view that copies each row's hash into record_hashes as it is inserted."""
    return (f"CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{HASHES_VIEW}{on_cluster} "
            f"TO {database}.{target} AS SELECT {HASH_KEY} AS hash, ingest_key "
            f"FROM {database}.{source}")


_ARROW_TYPES = {
    "String": pa.string(), "LowCardinality(String)": pa.string(), "UInt64": pa.uint64(),
    "Float64": pa.float64(), "Float32": pa.float32(), "Array(String)": pa.list_(pa.string()),
    "DateTime64(3, 'UTC')": pa.timestamp("ms", "UTC"),
}


def arrow_schema(cols: tuple[tuple[str, str], ...]) -> pa.Schema:
    """The Arrow schema of rows for a table defined by `cols` (the DDL stays the one layout)."""
    return pa.schema([(n, _ARROW_TYPES[t]) for n, t in cols])


def columns_sql(cols: tuple[tuple[str, str], ...]) -> str:
    return ",\n    ".join(f"{n} {t}" for n, t in cols)


def records_columns_sql() -> str:
    cols = [f"{c.name} {c.clickhouse}" for c in RECORD_COLUMNS]
    cols += [f"{n} {t}" for n, t in RECORDS_INTERNAL_COLUMNS]
    return ",\n    ".join(cols)


def table_ddl(database: str, engine_clause: str | None = None) -> dict[str, str]:
    """CREATE TABLE statements by table name. engine_clause overrides the table engines."""
    rec_engine = engine_clause or "ReplacingMergeTree(ingested_at)"
    body = records_columns_sql() + ",\n    " + ",\n    ".join(RECORDS_INDEXES)
    return {
        "records": (
            f"CREATE TABLE IF NOT EXISTS {database}.records (\n    {body}\n)"
            f" ENGINE = {rec_engine} ORDER BY {RECORDS_ORDER_BY} SETTINGS {RECORDS_SETTINGS}"
        ),
        "rejected_records": (
            f"CREATE TABLE IF NOT EXISTS {database}.rejected_records (\n"
            f"    {columns_sql(REJECTED_COLUMNS)}\n) ENGINE = MergeTree"
            " ORDER BY (source_file, partition_key, source_row)"
        ),
        "record_hashes": (
            f"CREATE TABLE IF NOT EXISTS {database}.record_hashes (\n"
            f"    {columns_sql(RECORD_HASHES_COLUMNS)}\n) ENGINE = MergeTree ORDER BY hash"
        ),
        "ingestion_log": (
            f"CREATE TABLE IF NOT EXISTS {database}.ingestion_log (\n"
            f"    {columns_sql(INGESTION_LOG_COLUMNS)}\n) ENGINE = ReplacingMergeTree(finished_at)"
            " ORDER BY (partition_key)"
        ),
    }


def ensure_tables(engine: Engine, ddl: dict[str, str]) -> list[str]:
    """Create the database and the tables of `ddl` (name -> CREATE ... IF NOT EXISTS)."""
    engine.command(f"CREATE DATABASE IF NOT EXISTS {engine.database}")
    for sql in ddl.values():
        engine.command(sql)
    return list(ddl)


def migrate(engine: Engine) -> list[str]:
    """Create the database and tables if missing, add columns added since; returns the tables
    ensured. An up-to-date database costs two catalog queries (every process start runs this)."""
    db, ddl = engine.database, table_ddl(engine.database)
    present = dict(engine.query_rows(
        "SELECT name, engine FROM system.tables WHERE database = {d:String}", {"d": db}))
    _refuse_an_old_cluster(present)
    if not set(ddl) <= set(present):
        ensure_tables(engine, ddl)
    columns = {(t, n) for t, n in engine.query_rows(
        "SELECT table, name FROM system.columns WHERE database = {d:String} "
        "AND table IN ('records', 'ingestion_log')", {"d": db})}
    # Columns added after a table was first created (CREATE IF NOT EXISTS won't add them).
    added = [("records", c.name, c.clickhouse) for c in RECORD_COLUMNS]
    added += [("records", n, t) for n, t in RECORDS_INTERNAL_COLUMNS]
    added += [("ingestion_log", n, t) for n, t in INGESTION_LOG_COLUMNS]
    for table, name, ch_type in added:
        if (table, name) not in columns:
            engine.command(f"ALTER TABLE {db}.{table} ADD COLUMN IF NOT EXISTS {name} {ch_type}")
    if HASHES_VIEW not in present:  # after the columns: the copy reads records.ingest_key
        fill_record_hashes(engine)
    return list(ddl)


def _refuse_an_old_cluster(present: dict[str, str]) -> None:
    """On a cluster (records is Distributed) only the cluster DDL may add record_hashes and
    its view: the embedded DDL would make a one-node table fed by no shard's inserts (and
    an earlier version's start may have made one: it must go before ddl_cluster --apply)."""
    if present.get("records") != "Distributed":
        return
    if present.get("record_hashes") not in (None, "Distributed"):
        raise RuntimeError(
            f"record_hashes on this cluster is a one-node {present['record_hashes']} table: "
            f"drop it and the view {HASHES_VIEW} on this node, then run `python -m "
            "creditlake.clickhouse.ddl_cluster --apply` (README, record_hashes, Clusters)")
    if not {"record_hashes", HASHES_VIEW} <= set(present):
        raise RuntimeError(
            "this cluster has no record_hashes yet: run `python -m "
            "creditlake.clickhouse.ddl_cluster --apply` first, then copy each shard's hashes "
            "(README, record_hashes, Clusters)")


def fill_record_hashes(engine: Engine) -> None:
    """Copy the hashes already in records (a home from before record_hashes), then start the
    view. In this order, a run killed part-way leaves no view, so the next start refills;
    rows inserted between the copy and the view only miss their hashes, and two processes
    migrating at once copy some twice: the next load's sync_record_hashes (ingest/hashes.py)
    repairs both."""
    db = engine.database
    engine.command(f"TRUNCATE TABLE IF EXISTS {db}.record_hashes")
    engine.command(f"INSERT INTO {db}.record_hashes SELECT {HASH_KEY}, ingest_key "
                   f"FROM {db}.records")
    engine.command(hashes_view_ddl(db))
