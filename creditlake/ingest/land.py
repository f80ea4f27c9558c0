"""Stage 1, land: read one file with its format's reader and map its headers to master
columns -> an Arrow IPC stream under $CREDITLAKE_HOME/staging/<key>/ (+ the parser's rejects
to rejected_records). Unrecognized or unreadable files are quarantined."""

from __future__ import annotations

import contextlib
import inspect
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc

from creditlake import readers
from creditlake.clickhouse.base import Engine
from creditlake.config import ReadLimits, load_settings
from creditlake.ingest.accounting import delete_rejects, insert_rejects, write_log
from creditlake.ingest.manifest import (
    UNRECOGNIZED,
    Manifest,
    Progress,
    Status,
    landed_path,
    open_landed,
    save_manifest,
    staging_dir,
)
from creditlake.ingest.overlap import prefetched
from creditlake.ingest.overrides import SourceOverrides
from creditlake.ingest.registry import LandingFile
from creditlake.readers._batches import notice_of
from creditlake.readers.arrow_util import release_arrow_memory
from creditlake.readers.base import ReaderOptions, ReaderRejects, subsource_of
from creditlake.rules.mapping import ColumnMapping, infer_mapping
from creditlake.rules.polars import map_columns
from creditlake.schema import SOURCE_FIELDS


def _source_name(name: str, sub: str | None) -> str:
    if not sub:
        return name
    base = Path(name).name
    if sub.startswith(base):
        return name + sub[len(base):]
    return f"{name}#{sub}"


LANDED_SCHEMA = pa.schema([("source_file", pa.string()), ("source_row", pa.uint64()),
                           *[(f, pa.string()) for f in SOURCE_FIELDS], ("metadata", pa.string())])


def land(engine: Engine, home: Path, entry: LandingFile, *, fmt: str | None = None,
         overrides: SourceOverrides | None = None, progress: Progress | None = None,
         batch_rows: int | None = None, limits: ReadLimits | None = None) -> Manifest:
    """Read + map one file into the staging area. Unreadable files are quarantined.
    limits: the readers' depth/size bounds (default: Settings.read_limits from the env)."""
    t0 = time.perf_counter()
    m = Manifest(key=entry.key, source_file=entry.name, path=entry.path)
    out_dir = staging_dir(home, entry.key)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    path = Path(entry.path)
    delete_rejects(engine, entry.key, "read")
    overrides = overrides or SourceOverrides()
    rule = overrides.for_source(entry.name)
    m.format = fmt or entry.format
    if not m.format:  # registered before formats were recorded at registration
        m.format, entry_reason = readers.detect_format(path)
    else:
        entry_reason = entry.unrecognized
    if m.format == UNRECOGNIZED:
        m.status, m.message = Status.QUARANTINED, entry_reason or "unrecognized format"
        _quarantine(home, path, entry.name)
        m.seconds["land"] = time.perf_counter() - t0
        save_manifest(home, m)
        return m
    opts = replace(rule.reader_options(batch_rows),
                   limits=limits or load_settings().read_limits)
    rejects = ReaderRejects()
    reader = readers.get_reader(m.format)
    mappings: dict[tuple, ColumnMapping] = {}
    writer: ipc.RecordBatchStreamWriter | None = None
    try:
        with open(landed_path(home, entry.key), "wb") as sink:
            writer = ipc.new_stream(sink, LANDED_SCHEMA)
            try:
                # the reader parses the next batch while this one is mapped and written
                for batch in prefetched(_call_reader(reader, path, opts, rejects)):
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
    except Exception as exc:  # noqa: BLE001 - any failure is the file's, never the run's
        failure = exc
    else:
        failure = None
    _record_reader_rejects(engine, m, rejects)
    if failure is not None:
        _fail(engine, home, m, failure)
    elif m.rows_read == 0 and m.read_rejected == 0 and m.message:
        m.status = Status.QUARANTINED
        _quarantine(home, path, entry.name)
    if not m.mappings and m.rows_read == 0 and not m.message:
        m.message = "no data rows (header only)"
    m.seconds["land"] = time.perf_counter() - t0
    save_manifest(home, m)
    release_arrow_memory()
    if m.status == Status.FAILED:
        write_log(engine, m)  # accounted now, whatever happens to the rest of the run
    return m


def failure_reason(exc: BaseException) -> str:
    """A failure in plain words: its kind and first line, not a stack trace."""
    if isinstance(exc, OSError):
        return f"cannot read file: {exc.strerror or exc}"
    if isinstance(exc, MemoryError):
        return "out of memory while parsing"
    if isinstance(exc, RecursionError):
        return "data nested too deeply to parse"
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{first} ({type(exc).__name__})" if first else type(exc).__name__


def _fail(engine: Engine, home: Path, m: Manifest, exc: BaseException) -> None:
    """Reading failed part-way: the file is `failed`, and the rows landed before the failure
    go to rejected_records (they are not loaded from a file that could not be read whole), so
    rows_read = rejected still reconciles."""
    m.status = Status.FAILED
    m.message = f"reading failed after record {m.rows_read}: {failure_reason(exc)}"
    landed = landed_path(home, m.key)
    if m.rows_read > m.read_rejected and landed.exists():
        reason = f"not loaded: {m.message}"
        with open_landed(landed) as source:
            for batch in ipc.open_stream(source):
                if batch.num_rows:
                    insert_rejects(engine, m, "read", _as_reject_rows(batch, reason))
        m.read_rejected = m.rows_read
    landed.unlink(missing_ok=True)


def _as_reject_rows(batch: pa.RecordBatch, reason: str) -> pa.Table:
    df = pl.from_arrow(batch)
    assert isinstance(df, pl.DataFrame)
    return df.select(
        "source_file", "source_row",
        pl.struct(pl.exclude("source_file", "source_row")).struct.json_encode().alias("raw_row"),
        pl.lit([reason], pl.List(pl.String)).alias("reasons")).to_arrow()


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
    insert_rejects(engine, m, "read", table)
    m.read_rejected = len(rows)
    m.rows_read += len(rows)


def _quarantine(home: Path, path: Path, name: str) -> None:
    target = home / "quarantine" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    # the ingestion_log row says why; the copy is a convenience for whoever fixes the file
    with contextlib.suppress(OSError):
        shutil.copy2(path, target)
