"""Where every row and file is accounted for: rejected_records (the dead-letter table) and the
file's ingestion_log row."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from creditlake.clickhouse.base import Engine
from creditlake.clickhouse.ddl import INGESTION_LOG_COLUMNS, arrow_schema
from creditlake.clickhouse.ddl_cluster import delete_target
from creditlake.ingest.manifest import Manifest, save_manifest

LOG_SCHEMA = arrow_schema(INGESTION_LOG_COLUMNS)
# Partitions of the current batch step known to have no rejected rows (see without_rejects)
_NO_REJECTS: ContextVar[set[str] | None] = ContextVar("partitions_without_rejects",
                                                       default=None)


@contextmanager
def without_rejects(engine: Engine, keys: Sequence[str]) -> Iterator[None]:
    """One step over a batch of files: one query finds which of them have rejected rows, and
    inside the block delete_rejects skips the others (a DELETE that matches nothing still
    costs a mutation, per file and stage). A partition whose rejects are inserted inside the
    block is deleted normally again."""
    if len(keys) < 2:
        yield
        return
    rows = engine.query_rows(
        f"SELECT DISTINCT partition_key FROM {engine.database}.rejected_records "
        "WHERE partition_key IN {keys:Array(String)}", {"keys": list(keys)})
    token = _NO_REJECTS.set(set(keys) - {r[0] for r in rows})
    try:
        yield
    finally:
        _NO_REJECTS.reset(token)


def insert_rejects(engine: Engine, m: Manifest, stage: str, rows: pa.Table) -> None:
    """rows: source_file, source_row, raw_row, reasons."""
    insert_rejects_of_files(engine, stage, [(m, rows)])


def insert_rejects_of_files(engine: Engine, stage: str,
                            files: Sequence[tuple[Manifest, pa.Table]]) -> None:
    """insert_rejects for several partitions' rows in one insert."""
    tables = [_reject_table(m, stage, rows) for m, rows in files if rows.num_rows]
    if tables:
        engine.insert_arrow(f"{engine.database}.rejected_records", pa.concat_tables(tables))


def _reject_table(m: Manifest, stage: str, rows: pa.Table) -> pa.Table:
    if (clean := _NO_REJECTS.get()) is not None:
        clean.discard(m.key)
    now = datetime.now(UTC)
    n = rows.num_rows
    return pa.table({
        "source_file": rows["source_file"],
        "partition_key": pa.array([m.key] * n, pa.string()),
        "source_row": rows["source_row"].cast(pa.uint64()),
        "stage": pa.array([stage] * n, pa.string()),
        "raw_row": rows["raw_row"],
        "reasons": rows["reasons"],
        "rejected_at": pa.array([now] * n, pa.timestamp("ms", "UTC")),
    })


def delete_rejects(engine: Engine, key: str, stage: str) -> None:
    """Forget a stage's rejects of a partition before that stage re-runs (idempotent re-runs)."""
    if (clean := _NO_REJECTS.get()) is not None and key in clean:
        return
    engine.command(
        f"DELETE FROM {delete_target(engine, 'rejected_records')} "
        "WHERE partition_key = {k:String} AND stage = {s:String}", {"k": key, "s": stage})


def log_message(m: Manifest) -> str:
    """The file's message plus the readers' notices (skipped tables, rejected members...)."""
    parts = [m.message] + [w for w in m.warnings if w != m.message]
    return "; ".join(p for p in parts if p)[:4000]


def write_log(engine: Engine, m: Manifest) -> None:
    """Upsert the partition's ingestion_log row (ReplacingMergeTree by partition_key)."""
    write_logs(engine, [m])


def write_logs(engine: Engine, manifests: Sequence[Manifest]) -> None:
    """Upsert the ingestion_log rows of several partitions in one insert."""
    if manifests:
        engine.insert_arrow(f"{engine.database}.ingestion_log",
                            pa.Table.from_pylist([_log_row(m) for m in manifests],
                                                 schema=LOG_SCHEMA))


def _log_row(m: Manifest) -> dict[str, object]:
    return {
        "partition_key": m.key, "source_file": m.source_file, "format": m.format,
        "rows_read": m.rows_read, "loaded": m.loaded, "duplicates": m.duplicates,
        "rejected": m.rejected, "held": m.held, "seconds": round(sum(m.seconds.values()), 3),
        "status": str(m.status), "message": log_message(m),
        "mapping": json.dumps(m.mappings, sort_keys=True), "quality_mean": m.quality_mean,
        "started_at": datetime.fromtimestamp(m.started_at, UTC),
        "finished_at": datetime.now(UTC),
    }


def record(engine: Engine, home: Path, m: Manifest) -> None:
    """Persist a stage's outcome: the manifest and the file's ingestion_log row."""
    record_many(engine, home, [m])


def record_many(engine: Engine, home: Path, manifests: Sequence[Manifest]) -> None:
    """record() for several partitions: their manifests, then one ingestion_log insert."""
    for m in manifests:
        save_manifest(home, m)
    write_logs(engine, manifests)

