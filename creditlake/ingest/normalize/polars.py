"""The normalize stage on Polars (the embedded default): the landed Arrow stream is cleaned by
the Polars compiler of the rules and validated by the Pandera model, batch by batch, into the
partition's ClickHouse stage table; rows that fail go to rejected_records."""

from __future__ import annotations

import queue
import threading
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
from creditlake.ingest.overrides import SourceOverrides
from creditlake.rules.polars import clean
from creditlake.rules.validation import validate
from creditlake.schema import SOURCE_FIELDS


def normalize(engine: Engine, home: Path, key: str, *, overrides: SourceOverrides | None = None,
              progress: Progress | None = None) -> Manifest:
    """Clean + Pandera-validate batch by batch into the partition's stage table."""
    b = begin(engine, home, key, overrides)
    m = b.manifest
    if b.done:
        return m
    # no sort: rows arrive in seq order already, and the load re-reads them ordered by seq
    table = create_stage_table(engine, key)
    score_sum = 0.0
    path = landed_path(home, key)
    # Inserts run on a writer thread so ClickHouse ingests batch i while Polars cleans and
    # validates batch i+1 (both release the GIL); the queue bounds memory to two batches.
    with _BackgroundWriter(engine) as writer, open_landed(path) as source:
        for batch in ipc.open_stream(source):
            if batch.num_rows == 0:
                continue
            df = pl.from_arrow(batch)
            assert isinstance(df, pl.DataFrame)
            result = validate(clean(df, default_country=b.rule.default_country,
                                    date_format=b.rule.date_format))
            # seq: file-wide row order (source_row restarts per table/sheet/member)
            valid = result.valid.select(LOADED_FIELDS).with_row_index(
                "seq", offset=m.valid).with_columns(pl.col("seq").cast(pl.UInt64))
            if valid.height:
                writer.insert(table, valid.to_arrow())
                score_sum += count_valid(m, valid)
            if result.rejected.height:
                writer.insert_rejects(m, rejected_rows(df, result.rejected))
                m.validation_rejected += result.rejected.height
            if progress:
                progress(batch.num_rows)
    m.quality_mean = score_sum / m.valid if m.valid else 0.0
    return finish(engine, home, m, b.t0)


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
