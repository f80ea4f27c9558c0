"""Stage 3, load: one INSERT ... SELECT per chunk dedups the partition's stage table within the
file (LIMIT 1 BY record_hash) and against `records` (anti-join), then the ingestion_log row.
Re-running replaces the partition's own rows (by ingest_key), so it is idempotent."""

from __future__ import annotations

import time
from pathlib import Path

from creditlake.clickhouse.base import Engine
from creditlake.clickhouse.ddl_cluster import delete_target
from creditlake.ingest.accounting import record
from creditlake.ingest.manifest import Manifest, Status, landed_path, load_manifest, stage_table

LOAD_CHUNK_ROWS = 4_000_000


def load(engine: Engine, home: Path, key: str, *, keep_staging: bool = False) -> Manifest:
    """Dedup the stage table within the file and against `records`, insert, account."""
    t0 = time.perf_counter()
    m = load_manifest(home, key)
    db = engine.database
    table = stage_table(engine, key)
    if m.status in (Status.NORMALIZED, Status.LOADED, Status.BLOCKED):
        engine.command(f"DELETE FROM {delete_target(engine, 'records')} "
                       "WHERE ingest_key = {k:String}", {"k": key})
        cols = ("user_id", "email", "name", "phone", "address", "city", "country")
        select_cols = ", ".join(f"ifNull({c}, '')" for c in cols)
        # Chunks by file order keep ClickHouse's hash sets bounded for huge files; rows of
        # earlier chunks are already in `records`, so the anti-join also dedups across chunks.
        for lo in range(0, max(m.valid, 1), LOAD_CHUNK_ROWS):
            chunk = f"(SELECT * FROM {table} WHERE seq >= {lo} AND seq < {lo + LOAD_CHUNK_ROWS})"
            engine.command(f"""
                INSERT INTO {db}.records (id, source_file, record_hash, ingested_at,
                    {', '.join(cols)}, created_date, status, metadata, data_quality_score,
                    validation_errors, ingest_key)
                SELECT generateUUIDv4(), source_file, record_hash, now64(3), {select_cols},
                    created_date, status, metadata, data_quality_score, validation_errors,
                    {{k:String}}
                FROM (SELECT * FROM {chunk} ORDER BY seq LIMIT 1 BY record_hash)
                WHERE record_hash NOT IN (
                    SELECT record_hash FROM {db}.records
                    WHERE record_hash IN (SELECT record_hash FROM {chunk}))
            """, {"k": key}, settings={"optimize_on_insert": 0})  # deduped above already
        m.loaded = int(engine.query_rows(
            f"SELECT count() FROM {db}.records WHERE ingest_key = {{k:String}}", {"k": key})[0][0])
        m.duplicates = m.valid - m.loaded
        m.status = Status.LOADED
    m.seconds["load"] = time.perf_counter() - t0
    record(engine, home, m)
    if not keep_staging:
        engine.command(f"DROP TABLE IF EXISTS {table}")
        landed_path(home, key).unlink(missing_ok=True)
    return m
