"""Stage 3, load: one INSERT ... SELECT per chunk dedups the partition's stage table within the
file (LIMIT 1 BY record_hash) and against `records` (anti-join), then the ingestion_log row.
Re-running replaces the partition's own rows (by ingest_key), so it is idempotent. The reject
policy (ingest/policy.py) decides first whether the file's valid rows load or are held."""

from __future__ import annotations

import time
from pathlib import Path

from creditlake.clickhouse.base import Engine
from creditlake.clickhouse.ddl_cluster import delete_target
from creditlake.ingest.accounting import record
from creditlake.ingest.manifest import Manifest, Status, landed_path, load_manifest, stage_table
from creditlake.ingest.overrides import SourceRule
from creditlake.ingest.policy import RejectPolicy

LOAD_CHUNK_ROWS = 4_000_000
_COLS = ("user_id", "email", "name", "phone", "address", "city", "country")


def insert_new_records(engine: Engine, table: str, key: str, rows: int) -> None:
    """Insert a stage table's rows into `records` under ingest_key `key`, skipping duplicates
    within the table (first by seq wins) and hashes already in `records`."""
    db = engine.database
    select_cols = ", ".join(f"ifNull({c}, '')" for c in _COLS)
    # Chunks by file order keep ClickHouse's hash sets bounded for huge files; rows of
    # earlier chunks are already in `records`, so the anti-join also dedups across chunks.
    for lo in range(0, max(rows, 1), LOAD_CHUNK_ROWS):
        chunk = f"(SELECT * FROM {table} WHERE seq >= {lo} AND seq < {lo + LOAD_CHUNK_ROWS})"
        engine.command(f"""
            INSERT INTO {db}.records (id, source_file, record_hash, ingested_at,
                {', '.join(_COLS)}, created_date, status, metadata, data_quality_score,
                validation_errors, ingest_key)
            SELECT generateUUIDv4(), source_file, record_hash, now64(3), {select_cols},
                created_date, status, metadata, data_quality_score, validation_errors,
                {{k:String}}
            FROM (SELECT * FROM {chunk} ORDER BY seq LIMIT 1 BY record_hash)
            WHERE record_hash NOT IN (
                SELECT record_hash FROM {db}.records
                WHERE record_hash IN (SELECT record_hash FROM {chunk}))
        """, {"k": key}, settings={"optimize_on_insert": 0})  # deduped above already


def loaded_count(engine: Engine, key: str) -> int:
    return int(engine.query_rows(f"SELECT count() FROM {engine.database}.records "
                                 "WHERE ingest_key = {k:String}", {"k": key})[0][0])


def load(engine: Engine, home: Path, key: str, *, policy: RejectPolicy | None = None,
         rule: SourceRule | None = None, keep_staging: bool = False) -> Manifest:
    """Dedup the stage table within the file and against `records`, insert, account. With a
    policy, a file whose rejects exceed it is held (status blocked, staging kept) when the
    policy or the source's rule says block, and loaded with a warning otherwise."""
    t0 = time.perf_counter()
    m = load_manifest(home, key)
    table = stage_table(engine, key)
    loadable = m.status in (Status.NORMALIZED, Status.LOADED, Status.BLOCKED)
    if loadable and not engine.query_rows(f"EXISTS TABLE {table}")[0][0]:
        if m.status == Status.LOADED:  # loaded before, staging dropped: keep its rows as they are
            return m
        raise FileNotFoundError(f"{m.source_file}: its stage table {table} is gone; "
                                f"materialize normalize/contacts for {key} first")
    if loadable and policy is not None and policy.exceeded(m):
        held = policy.holds(m, rule or SourceRule())
        note = policy.message(m, held)
        if held:
            m.status, m.message = Status.BLOCKED, note
            m.seconds["load"] = time.perf_counter() - t0
            record(engine, home, m)
            return m
        if note not in m.warnings:
            m.warnings.append(note)
    if loadable:
        engine.command(f"DELETE FROM {delete_target(engine, 'records')} "
                       "WHERE ingest_key = {k:String}", {"k": key})
        insert_new_records(engine, table, key, m.valid)
        m.loaded = loaded_count(engine, key)
        m.duplicates = m.valid - m.loaded
        m.status = Status.LOADED
    m.seconds["load"] = time.perf_counter() - t0
    record(engine, home, m)
    if not keep_staging:
        engine.command(f"DROP TABLE IF EXISTS {table}")
        landed_path(home, key).unlink(missing_ok=True)
    return m
