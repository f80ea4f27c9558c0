"""The three ingestion stages as plain functions (Dagster assets and the CLI call these).

land      read the file with its format's reader, map headers to master columns -> Arrow IPC
          file under $CREDITLAKE_HOME/staging/<key>/ (+ parser rejects to rejected_records)
normalize clean + Pandera-validate batch by batch -> ClickHouse staging table (record_hash
          computed by ClickHouse on insert) + validation rejects to rejected_records
load      one INSERT ... SELECT: dedup within the file (LIMIT 1 BY record_hash) and against
          `records` (anti-join), then the ingestion_log row. Re-running replaces the
          partition's own rows, so it is idempotent.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc

from creditlake import readers
from creditlake.ddl_cluster import DEFAULT_CLUSTER
from creditlake.engine.base import Engine
from creditlake.engines.polars import TEXT_FIELDS, clean, map_columns
from creditlake.ingest.registry import LandingFile
from creditlake.readers._batches import notice_of
from creditlake.readers.base import ReaderOptions, ReaderRejects, subsource_of
from creditlake.rules.identity import clickhouse_hash_sql
from creditlake.rules.mapping import ColumnMapping, infer_mapping
from creditlake.rules.overrides import SourceOverrides
from creditlake.validation import validate

Progress = Callable[[int], None]  # called with the number of rows just processed
UNRECOGNIZED = "unrecognized"


@dataclass
class Manifest:
    """What a partition's stages know about it; saved as JSON next to its staged data."""

    key: str
    source_file: str
    path: str
    format: str = ""
    status: str = "landed"          # landed | quarantined | normalized | blocked | loaded | failed
    message: str = ""
    rows_read: int = 0
    read_rejected: int = 0
    valid: int = 0
    validation_rejected: int = 0
    loaded: int = 0
    duplicates: int = 0
    quality_mean: float = 0.0
    quality_histogram: list[int] = field(default_factory=lambda: [0] * 10)
    mappings: dict[str, dict] = field(default_factory=dict)  # source -> mapping
    warnings: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return self.read_rejected + self.validation_rejected

    @property
    def failure_rate(self) -> float:
        return self.rejected / self.rows_read if self.rows_read else 0.0


def staging_dir(home: Path, key: str) -> Path:
    return home / "staging" / hashlib.sha1(key.encode()).hexdigest()[:20]


def stage_table(engine: Engine, key: str) -> str:
    return f"{engine.database}.stage_{hashlib.sha1(key.encode()).hexdigest()[:20]}"


def save_manifest(home: Path, m: Manifest) -> None:
    d = staging_dir(home, m.key)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / "manifest.json.tmp"
    tmp.write_text(json.dumps(asdict(m)))
    tmp.replace(d / "manifest.json")


def load_manifest(home: Path, key: str) -> Manifest:
    f = staging_dir(home, key) / "manifest.json"
    if not f.exists():
        raise FileNotFoundError(f"partition {key!r} has not been landed yet")
    return Manifest(**json.loads(f.read_text()))


def _source_name(name: str, sub: str | None) -> str:
    if not sub:
        return name
    base = Path(name).name
    if sub.startswith(base):
        return name + sub[len(base):]
    return f"{name}#{sub}"


def _insert_rejects(engine: Engine, m: Manifest, stage: str, rows: pa.Table) -> None:
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


def delete_target(engine: Engine, table: str) -> str:
    """Where a DELETE for `table` must go: the table itself, or - on a cluster, where `table`
    is a Distributed table over `<table>_local` (see ddl_cluster.py) - the local tables on
    every node. Lightweight deletes don't run through Distributed tables."""
    rows = engine.query_rows("SELECT engine FROM system.tables WHERE database = {d:String} "
                             "AND name = {t:String}", {"d": engine.database, "t": table})
    return delete_target_for(rows[0][0] if rows else "", engine.database, table,
                             os.environ.get("CREDITLAKE_CLICKHOUSE_CLUSTER", DEFAULT_CLUSTER))


def delete_target_for(table_engine: str, database: str, table: str, cluster: str) -> str:
    if table_engine == "Distributed":
        return f"{database}.{table}_local ON CLUSTER '{cluster}'"
    return f"{database}.{table}"


def _delete_rejects(engine: Engine, key: str, stage: str) -> None:
    engine.command(
        f"DELETE FROM {delete_target(engine, 'rejected_records')} "
        "WHERE partition_key = {k:String} AND stage = {s:String}", {"k": key, "s": stage})


# ---------------------------------------------------------------- stage 1: land

LANDED_SCHEMA = pa.schema([("source_file", pa.string()), ("source_row", pa.uint64()),
                           *[(f, pa.string()) for f in TEXT_FIELDS], ("metadata", pa.string())])


def land(engine: Engine, home: Path, entry: LandingFile, *, fmt: str | None = None,
         overrides: SourceOverrides | None = None, progress: Progress | None = None,
         batch_rows: int | None = None) -> Manifest:
    """Read + map one file into the staging area. Unreadable files are quarantined."""
    t0 = time.perf_counter()
    m = Manifest(key=entry.key, source_file=entry.name, path=entry.path)
    out_dir = staging_dir(home, entry.key)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    path = Path(entry.path)
    _delete_rejects(engine, entry.key, "read")
    overrides = overrides or SourceOverrides()
    rule = overrides.for_source(entry.name)
    try:
        m.format = fmt or readers.detect(path)
    except (readers.ReaderError, OSError) as exc:
        m.format, m.status, m.message = UNRECOGNIZED, "quarantined", str(exc)
        _quarantine(home, path, entry.name)
        m.seconds["land"] = time.perf_counter() - t0
        save_manifest(home, m)
        return m
    opts = rule.reader_options(batch_rows)
    rejects = ReaderRejects()
    reader = readers.get_reader(m.format)
    mappings: dict[tuple, ColumnMapping] = {}
    writer: ipc.RecordBatchStreamWriter | None = None
    try:
        with open(out_dir / "landed.arrow", "wb") as sink:
            writer = ipc.new_stream(sink, LANDED_SCHEMA)
            try:
                batches = _call_reader(reader, path, opts, rejects)
                for batch in batches:
                    if notice := notice_of(batch):  # e.g. "table orders skipped: not people"
                        m.warnings.append(notice)
                        continue
                    sub = subsource_of(batch)
                    source = _source_name(entry.name, sub)
                    cols = tuple(batch.schema.names)
                    mapping = mappings.get((source, cols))
                    if mapping is None:
                        mapping = infer_mapping(cols, rule.columns)
                        mappings[(source, cols)] = mapping
                        m.mappings[source] = json.loads(mapping.to_json())
                    df = pl.from_arrow(batch)
                    assert isinstance(df, pl.DataFrame)
                    mapped = map_columns(df, mapping, source)
                    writer.write_table(mapped.to_arrow().cast(LANDED_SCHEMA))
                    m.rows_read += batch.num_rows
                    if progress:
                        progress(batch.num_rows)
            except readers.ReaderError as exc:
                # Good rows before the error are kept; the error is the file's message.
                m.message = str(exc)
                m.warnings.append(str(exc))
            finally:
                writer.close()
    except OSError as exc:
        m.status, m.message = "failed", f"cannot read file: {exc}"
    _record_reader_rejects(engine, m, rejects)
    if m.rows_read == 0 and m.read_rejected == 0 and m.message and m.status != "failed":
        m.status = "quarantined"
        _quarantine(home, path, entry.name)
    if not m.mappings and m.rows_read == 0 and not m.message:
        m.message = "no data rows (header only)"
    m.seconds["land"] = time.perf_counter() - t0
    save_manifest(home, m)
    return m


def _call_reader(reader, path: Path, opts: ReaderOptions, rejects: ReaderRejects):
    if "rejects" in inspect.signature(reader).parameters:
        return reader(path, opts, rejects=rejects)
    return reader(path, opts)  # readers without a rejects channel


def _record_reader_rejects(engine: Engine, m: Manifest, rejects: ReaderRejects) -> None:
    if not rejects.rows:
        return
    rows, raw, reasons = zip(*rejects.rows, strict=True)
    table = pa.table({
        "source_file": pa.array([m.source_file] * len(rows), pa.string()),
        "source_row": pa.array(rows, pa.uint64()),
        "raw_row": pa.array(raw, pa.string()),
        "reasons": pa.array([[r] for r in reasons], pa.list_(pa.string())),
    })
    _insert_rejects(engine, m, "read", table)
    m.read_rejected = len(rows)
    m.rows_read += len(rows)


def _quarantine(home: Path, path: Path, name: str) -> None:
    target = home / "quarantine" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    # the ingestion_log row says why; the copy is a convenience for whoever fixes the file
    with contextlib.suppress(OSError):
        shutil.copy2(path, target)


# ---------------------------------------------------------------- stage 2: normalize

STAGE_COLUMNS = (
    "seq UInt64, source_file String, source_row UInt64, user_id Nullable(String), "
    "email Nullable(String), "
    "name Nullable(String), phone Nullable(String), address Nullable(String), "
    "city Nullable(String), country Nullable(String), created_date Nullable(Date), "
    "status String, metadata String, data_quality_score Float32, "
    "validation_errors Array(String)"
)
LOADED_FIELDS = ("source_file", "source_row", "user_id", "email", "name", "phone", "address",
                 "city", "country", "created_date", "status", "metadata",
                 "data_quality_score", "validation_errors")


def normalize(engine: Engine, home: Path, key: str, *, overrides: SourceOverrides | None = None,
              progress: Progress | None = None) -> Manifest:
    t0 = time.perf_counter()
    m = load_manifest(home, key)
    table = stage_table(engine, key)
    engine.command(f"DROP TABLE IF EXISTS {table}")
    _delete_rejects(engine, key, "validate")
    m.valid = m.validation_rejected = 0
    m.quality_histogram = [0] * 10
    if m.status in ("quarantined", "failed"):
        save_manifest(home, m)
        write_log(engine, m)
        return m
    engine.command(
        f"CREATE TABLE {table} ({STAGE_COLUMNS}, record_hash String "
        f"DEFAULT {clickhouse_hash_sql()}) ENGINE = MergeTree ORDER BY tuple()")  # no sort:
    # rows arrive in seq order already, and the load re-reads them ordered by seq
    rule = (overrides or SourceOverrides()).for_source(m.source_file)
    score_sum = 0.0
    path = staging_dir(home, key) / "landed.arrow"
    # Inserts run on a writer thread so ClickHouse ingests batch i while Polars cleans and
    # validates batch i+1 (both release the GIL); the queue bounds memory to two batches.
    with _BackgroundWriter(engine) as writer, pa.memory_map(str(path)) as source:
        for batch in ipc.open_stream(source):
            if batch.num_rows == 0:
                continue
            df = pl.from_arrow(batch)
            assert isinstance(df, pl.DataFrame)
            cleaned = clean(df, default_country=rule.default_country,
                            date_format=rule.date_format)
            result = validate(cleaned)
            valid = result.valid.select(LOADED_FIELDS)
            # seq: file-wide row order (source_row restarts per table/sheet/member)
            valid = valid.with_row_index("seq", offset=m.valid).with_columns(
                pl.col("seq").cast(pl.UInt64))
            if valid.height:
                writer.insert(table, valid.to_arrow())
                m.valid += valid.height
                scores = valid.get_column("data_quality_score")
                score_sum += float(scores.sum())
                bins = (scores * 10).floor().clip(0, 9).cast(pl.Int32)
                for b, n in bins.value_counts().iter_rows():
                    m.quality_histogram[int(b)] += int(n)
            if result.rejected.height:
                writer.insert_rejects(m, _rejected_rows(df, result.rejected))
                m.validation_rejected += result.rejected.height
            if progress:
                progress(batch.num_rows)
    m.quality_mean = score_sum / m.valid if m.valid else 0.0
    m.status = "normalized"
    m.seconds["normalize"] = time.perf_counter() - t0
    save_manifest(home, m)
    write_log(engine, m)  # interim row: the file is accounted for even if loading never runs
    return m


def block(engine: Engine, home: Path, key: str, reason: str) -> Manifest:
    """Mark a normalized partition as held back (a blocking quality check failed)."""
    m = load_manifest(home, key)
    m.status, m.message = "blocked", reason
    save_manifest(home, m)
    write_log(engine, m)
    return m


def _rejected_rows(landed: pl.DataFrame, rejected: pl.DataFrame) -> pa.Table:
    """The landed (mapped, uncleaned) values of rejected rows as one JSON raw_row each,
    with the unmapped source columns folded in, so the whole source row is kept."""
    raw = landed.join(rejected, on="source_row", how="inner")
    body = pl.struct([*TEXT_FIELDS]).struct.json_encode()
    return raw.select(
        "source_file", "source_row",
        (body.str.head(-1) + pl.lit(',"metadata":') + pl.col("metadata") + pl.lit("}"))
        .alias("raw_row"),
        "reasons").to_arrow()


class _BackgroundWriter:
    """One writer thread; errors surface on the next call or at exit."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.q: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="stage-writer", daemon=True)

    def __enter__(self) -> _BackgroundWriter:
        self.thread.start()
        return self

    def _run(self) -> None:
        while (job := self.q.get()) is not None:
            if self.error is None:
                try:
                    job()
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                    self.error = exc

    def _put(self, job) -> None:
        if self.error is not None:
            raise self.error
        self.q.put(job)

    def insert(self, table: str, data: pa.Table) -> None:
        self._put(lambda: self.engine.insert_arrow(table, data))

    def insert_rejects(self, m: Manifest, rows: pa.Table) -> None:
        self._put(lambda: _insert_rejects(self.engine, m, "validate", rows))

    def __exit__(self, *exc) -> None:
        self.q.put(None)
        self.thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error


# ---------------------------------------------------------------- stage 3: load

LOAD_CHUNK_ROWS = 4_000_000


def load(engine: Engine, home: Path, key: str, *, keep_staging: bool = False) -> Manifest:
    t0 = time.perf_counter()
    m = load_manifest(home, key)
    db = engine.database
    table = stage_table(engine, key)
    if m.status in ("normalized", "loaded", "blocked"):
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
        m.status = "loaded"
    m.seconds["load"] = time.perf_counter() - t0
    write_log(engine, m)
    save_manifest(home, m)
    if not keep_staging:
        engine.command(f"DROP TABLE IF EXISTS {table}")
        landed = staging_dir(home, key) / "landed.arrow"
        landed.unlink(missing_ok=True)
    return m


def log_message(m: Manifest) -> str:
    """The file's message plus the readers' notices (skipped tables, rejected members...)."""
    parts = [m.message] + [w for w in m.warnings if w != m.message]
    return "; ".join(p for p in parts if p)[:4000]


def write_log(engine: Engine, m: Manifest) -> None:
    """Upsert the partition's ingestion_log row (ReplacingMergeTree by partition_key)."""
    now = datetime.now(UTC)
    row = {
        "partition_key": m.key, "source_file": m.source_file, "format": m.format,
        "rows_read": m.rows_read, "loaded": m.loaded, "duplicates": m.duplicates,
        "rejected": m.rejected, "seconds": round(sum(m.seconds.values()), 3),
        "status": m.status, "message": log_message(m),
        "mapping": json.dumps(m.mappings, sort_keys=True), "quality_mean": m.quality_mean,
        "started_at": datetime.fromtimestamp(m.started_at, UTC), "finished_at": now,
    }
    schema = pa.schema([
        ("partition_key", pa.string()), ("source_file", pa.string()), ("format", pa.string()),
        ("rows_read", pa.uint64()), ("loaded", pa.uint64()), ("duplicates", pa.uint64()),
        ("rejected", pa.uint64()), ("seconds", pa.float64()), ("status", pa.string()),
        ("message", pa.string()), ("mapping", pa.string()), ("quality_mean", pa.float32()),
        ("started_at", pa.timestamp("ms", "UTC")), ("finished_at", pa.timestamp("ms", "UTC")),
    ])
    engine.insert_arrow(f"{engine.database}.ingestion_log",
                        pa.Table.from_pylist([row], schema=schema))
