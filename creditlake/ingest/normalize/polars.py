"""The normalize stage on Polars (the embedded default): the landed Arrow stream is cleaned by
the Polars compiler of the rules and validated by the Pandera model, batch by batch, into the
partition's ClickHouse stage table; rows that fail go to rejected_records."""

from __future__ import annotations

import functools
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc

from creditlake.clickhouse.base import Engine
from creditlake.ingest.accounting import insert_rejects
from creditlake.ingest.manifest import (
    LOADED_FIELDS,
    Manifest,
    Progress,
    create_stage_table,
    landed_path,
    open_landed,
)
from creditlake.ingest.normalize.common import begin, finish
from creditlake.ingest.overlap import in_order
from creditlake.ingest.overrides import SourceOverrides, SourceRule
from creditlake.readers.arrow_util import release_arrow_memory
from creditlake.rules.polars import clean
from creditlake.rules.validation import validate
from creditlake.schema import SOURCE_FIELDS

# Batches cleaned + validated at once; each adds one landed batch (200K rows) and its cleaned
# frames to the normalize stage's memory. With two, a quarter of the 2 cores sat idle (thread
# sampling of a 10M-row file); three: normalize 42.7-45.0 s instead of 47.2-49.1 s, the
# command's peak RSS unchanged (1.60 GB: it is the load's, not this stage's).
IN_FLIGHT = 3


def normalize(engine: Engine, home: Path, key: str, *, overrides: SourceOverrides | None = None,
              progress: Progress | None = None) -> Manifest:
    """Clean + Pandera-validate batch by batch into the partition's stage table."""
    b = begin(engine, home, key, overrides)
    m = b.manifest
    if b.done:
        return m
    table = create_stage_table(engine, key)
    score_sum = 0.0
    path = landed_path(home, key)
    # Inserts run on a writer thread so ClickHouse ingests batch i while Polars cleans and
    # validates later batches (both release the GIL); the queue bounds memory to two batches.
    # Batches are prepared IN_FLIGHT at a time on a pool (one batch's kernels leave a core
    # idle between steps) and taken in file order, so seq, counts and rejects are as serial.
    with (_BackgroundWriter(engine) as writer, open_landed(path) as source,
          ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="normalize") as pool):
        batches = (batch for batch in ipc.open_stream(source) if batch.num_rows)
        for got in in_order(pool, functools.partial(prepare, rule=b.rule), batches,
                            IN_FLIGHT):
            # seq: file-wide row order (source_row restarts per table/sheet/member)
            valid = got.valid.with_row_index("seq", offset=m.valid).with_columns(
                pl.col("seq").cast(pl.UInt64))
            if valid.height:
                writer.insert(table, valid.to_arrow())
                score_sum += count_valid(m, valid)
            if got.rejects is not None:
                writer.insert_rejects(m, got.rejects)
                m.validation_rejected += got.rejects.num_rows
            if progress:
                progress(got.rows)
    m.quality_mean = score_sum / m.valid if m.valid else 0.0
    release_arrow_memory()
    return finish(engine, home, m, b.t0)


@dataclass
class Prepared:
    """One landed batch cleaned and validated, before its rows are numbered (seq)."""
    rows: int                # landed rows
    valid: pl.DataFrame      # LOADED_FIELDS of the valid rows, in landed order
    rejects: pa.Table | None  # rejected_rows() of the batch, None when there are none


def prepare(batch: pa.RecordBatch, rule: SourceRule) -> Prepared:
    """clean + validate one landed batch: everything about it that does not depend on the
    batches before it (runs on the normalize pool)."""
    df = pl.from_arrow(batch)
    assert isinstance(df, pl.DataFrame)
    result = validate(clean(df, default_country=rule.default_country,
                            date_format=rule.date_format))
    rejects = rejected_rows(df, result.rejected) if result.rejected.height else None
    return Prepared(batch.num_rows, result.valid.select(LOADED_FIELDS), rejects)


def count_valid(m: Manifest, valid: pl.DataFrame) -> float:
    """Add a frame of one file's valid rows to its counts and quality histogram; returns the
    frame's score sum."""
    m.valid += valid.height
    scores = valid.get_column("data_quality_score")
    bins = (scores * 10).floor().clip(0, 9).cast(pl.Int32)
    for b, n in bins.value_counts().iter_rows():
        m.quality_histogram[int(b)] += int(n)
    return float(scores.sum())


def rejected_rows(landed: pl.DataFrame, rejected: pl.DataFrame) -> pa.Table:
    """The landed (mapped, uncleaned) values of rejected rows as one JSON raw_row each,
    with the unmapped source columns folded in, so the whole source row is kept."""
    raw = landed.join(rejected, on="source_row", how="inner")
    body = pl.struct([*SOURCE_FIELDS]).struct.json_encode()
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
        self._put(lambda: insert_rejects(self.engine, m, "validate", rows))

    def __exit__(self, *exc) -> None:
        self.q.put(None)
        self.thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error
