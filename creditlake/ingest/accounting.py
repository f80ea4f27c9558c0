"""Where every row and file is accounted for: rejected_records (the dead-letter table) and the
file's ingestion_log row."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from creditlake.clickhouse.base import Engine
from creditlake.clickhouse.ddl import INGESTION_LOG_COLUMNS, arrow_schema
from creditlake.clickhouse.ddl_cluster import delete_target
from creditlake.ingest.manifest import Manifest, save_manifest

LOG_SCHEMA = arrow_schema(INGESTION_LOG_COLUMNS)


def insert_rejects(engine: Engine, m: Manifest, stage: str, rows: pa.Table) -> None:
    """rows: source_file, source_row, raw_row, reasons."""
    if rows.num_rows == 0:
        return
    now = datetime.now(UTC)
    n = rows.num_rows
    table = pa.table({
        "source_file": rows["source_file"],
        "partition_key": pa.array([m.key] * n, pa.string()),
        "source_row": rows["source_row"].cast(pa.uint64()),
        "stage": pa.array([stage] * n, pa.string()),
        "raw_row": rows["raw_row"],
        "reasons": rows["reasons"],
        "rejected_at": pa.array([now] * n, pa.timestamp("ms", "UTC")),
    })
    engine.insert_arrow(f"{engine.database}.rejected_records", table)


def delete_rejects(engine: Engine, key: str, stage: str) -> None:
    """Forget a stage's rejects of a partition before that stage re-runs (idempotent re-runs)."""
    engine.command(
        f"DELETE FROM {delete_target(engine, 'rejected_records')} "
        "WHERE partition_key = {k:String} AND stage = {s:String}", {"k": key, "s": stage})


def log_message(m: Manifest) -> str:
    """The file's message plus the readers' notices (skipped tables, rejected members...)."""
    parts = [m.message] + [w for w in m.warnings if w != m.message]
    return "; ".join(p for p in parts if p)[:4000]


def write_log(engine: Engine, m: Manifest) -> None:
    """Upsert the partition's ingestion_log row (ReplacingMergeTree by partition_key)."""
    row = {
        "partition_key": m.key, "source_file": m.source_file, "format": m.format,
        "rows_read": m.rows_read, "loaded": m.loaded, "duplicates": m.duplicates,
        "rejected": m.rejected, "held": m.held, "seconds": round(sum(m.seconds.values()), 3),
        "status": str(m.status), "message": log_message(m),
        "mapping": json.dumps(m.mappings, sort_keys=True), "quality_mean": m.quality_mean,
        "started_at": datetime.fromtimestamp(m.started_at, UTC),
        "finished_at": datetime.now(UTC),
    }
    engine.insert_arrow(f"{engine.database}.ingestion_log",
                        pa.Table.from_pylist([row], schema=LOG_SCHEMA))


def record(engine: Engine, home: Path, m: Manifest) -> None:
    """Persist a stage's outcome: the manifest and the file's ingestion_log row."""
    save_manifest(home, m)
    write_log(engine, m)

