"""The Polars normalize stage for a batch of small files: their landed rows are cleaned and
validated as ONE frame (Polars + Pandera cost ~60 ms CPU a call whatever the rows: at 100 rows
a file that was most of its time) and staged with ONE insert into the batch's stage table
(manifest.batch_stage_table: rows keyed by partition_key; a CREATE plus an insert per file cost
~15 ms a file in chDB), then accounted per file - its rejects, manifest and log row - exactly
as normalize/polars.py does for one file (the rules and the checks are row by row, so a row's
result does not depend on the rows beside it).

A file's error (unreadable landed data) fails that file alone; if the shared pass or its insert
fails, the chunk's files go through polars.normalize one by one (each into its own stage
table), so the faulty file fails alone there.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc

from creditlake.clickhouse.base import Engine
from creditlake.ingest.accounting import insert_rejects_of_files, record_many
from creditlake.ingest.manifest import (
    LOADED_FIELDS,
    Manifest,
    Progress,
    Status,
    batch_stage_table,
    create_batch_stage_table,
    landed_path,
    open_landed,
    stage_table,
)
from creditlake.ingest.normalize import polars as one_file
from creditlake.ingest.normalize.common import Begun, begin
from creditlake.ingest.overrides import SourceOverrides
from creditlake.readers.base import DEFAULT_BATCH_ROWS
from creditlake.rules.polars import clean
from creditlake.rules.validation import validate

Outcome = Manifest | Exception  # a file's manifest, or the error that failed it alone
FILE = "batch_file"  # the frame column telling a chunk's files apart (no source field)
# Files are cleaned together up to this many landed rows: memory stays that of one reader
# batch of one file; a file with more rows goes through polars.normalize on its own.
CHUNK_ROWS = DEFAULT_BATCH_ROWS


def normalize_many(engine: Engine, home: Path, keys: Sequence[str], *,
                   overrides: SourceOverrides | None = None,
                   progress: Progress | None = None) -> dict[str, Outcome]:
    """polars.normalize() of every key, the small files in shared passes. Returns each key's
    outcome; the normalized files' manifests and log rows are written in one go."""
    batch = Batch(batch_stage_table(engine, keys))
    engine.command("DROP TABLE IF EXISTS "
                   + ", ".join([batch.table, *(stage_table(engine, k) for k in keys)]))
    out: dict[str, Outcome] = {}
    small: list[Begun] = []
    for key in keys:
        try:
            b = begin(engine, home, key, overrides, drop_stage=False)
        except Exception as exc:  # noqa: BLE001 - this file fails, the batch goes on
            out[key] = exc
            continue
        if b.done:
            out[key] = b.manifest
        elif b.manifest.rows_read > CHUNK_ROWS:
            out[key] = _alone(engine, home, key, overrides, progress)
        else:
            small.append(b)
    normalized: list[Manifest] = []
    for chunk in _chunks(small):
        got = _normalize_chunk(engine, home, batch, chunk, overrides, progress)
        out.update(got)
        normalized += [m for b in chunk if isinstance(m := got[b.manifest.key], Manifest)
                       and m is b.manifest]
    record_many(engine, home, normalized)  # the interim log rows, one insert
    return {k: out[k] for k in keys}


@dataclass
class Batch:
    table: str
    created: bool = False


def _alone(engine: Engine, home: Path, key: str, overrides: SourceOverrides | None,
           progress: Progress | None) -> Outcome:
    try:
        return one_file.normalize(engine, home, key, overrides=overrides, progress=progress)
    except Exception as exc:  # noqa: BLE001 - this file fails, the batch goes on
        return exc


def _chunks(files: list[Begun]) -> list[list[Begun]]:
    """Files with the same cleaning rule (default country, date format), in order, packed
    into chunks of at most CHUNK_ROWS landed rows."""
    by_rule: dict[tuple, list[list[Begun]]] = {}
    for b in files:
        chunks = by_rule.setdefault((b.rule.default_country, b.rule.date_format), [[]])
        if chunks[-1] and sum(c.manifest.rows_read for c in chunks[-1]) \
                + b.manifest.rows_read > CHUNK_ROWS:
            chunks.append([])
        chunks[-1].append(b)
    return [c for chunks in by_rule.values() for c in chunks if c]


def _read_landed(home: Path, key: str) -> pl.DataFrame:
    with open_landed(landed_path(home, key)) as source:
        df = pl.from_arrow(ipc.open_stream(source).read_all())
    assert isinstance(df, pl.DataFrame)
    return df


def _normalize_chunk(engine: Engine, home: Path, batch: Batch, chunk: list[Begun],
                     overrides: SourceOverrides | None,
                     progress: Progress | None) -> dict[str, Outcome]:
    t0 = time.perf_counter()
    out: dict[str, Outcome] = {}
    landed: dict[int, pl.DataFrame] = {}
    for i, b in enumerate(chunk):
        try:
            landed[i] = _read_landed(home, b.manifest.key).with_columns(
                pl.lit(i, pl.UInt32).alias(FILE))
        except Exception as exc:  # noqa: BLE001 - this file fails, the batch goes on
            out[b.manifest.key] = exc
    if not landed:
        return out
    rule = chunk[0].rule
    partition_key = pl.col(FILE).replace_strict(
        list(range(len(chunk))), [b.manifest.key for b in chunk], return_dtype=pl.String)
    try:
        result = validate(clean(pl.concat(landed.values()), default_country=rule.default_country,
                                date_format=rule.date_format), keep=(FILE,))
        # seq: the file's row order, as polars.normalize numbers it
        valid = result.valid.select(FILE, *LOADED_FIELDS).with_columns(
            pl.int_range(pl.len(), dtype=pl.UInt64).over(FILE).alias("seq"))
        if not batch.created:  # even if empty: every normalized file has a stage
            create_batch_stage_table(engine, batch.table)
            batch.created = True
        if valid.height:
            engine.insert_arrow(batch.table, valid.select(
                partition_key.alias("partition_key"), pl.exclude(FILE)).to_arrow())
    except Exception:  # noqa: BLE001 - some file's values broke the shared pass: one by one
        for i in landed:
            key = chunk[i].manifest.key
            out[key] = _alone(engine, home, key, overrides, progress)
        return out
    valid_of = valid.partition_by(FILE, as_dict=True, include_key=False)
    rejected_of = result.rejected.partition_by(FILE, as_dict=True, include_key=False)
    share = (time.perf_counter() - t0) / len(landed)
    rejects: list[tuple[Manifest, pa.Table]] = []
    for i in landed:
        m = chunk[i].manifest
        score_sum = 0.0
        m.stage = batch.table
        if (v := valid_of.get((i,))) is not None:
            score_sum = one_file.count_valid(m, v)
        if (r := rejected_of.get((i,))) is not None:
            rejects.append((m, one_file.rejected_rows(landed[i].drop(FILE), r)))
            m.validation_rejected = r.height
        m.quality_mean = score_sum / m.valid if m.valid else 0.0
        m.status = Status.NORMALIZED
        m.seconds["normalize"] = share
        out[m.key] = m
    insert_rejects_of_files(engine, "validate", rejects)
    if progress:
        progress(sum(df.height for df in landed.values()))
    return out
