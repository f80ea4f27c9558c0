"""The Polars normalize stage for a batch of small files: their landed rows are cleaned and
validated as ONE frame (Polars + Pandera cost ~60 ms CPU a call whatever the rows: at 100 rows
a file that was most of its time), then split back per file into its own stage table, its
rejects and its manifest, exactly as normalize/polars.py does for one file (the rules and the
checks are row by row, so a row's result does not depend on the rows beside it).

A file's error (unreadable landed data, a stage insert the engine refuses) fails that file
alone; if the shared pass itself fails, the chunk's files go through polars.normalize one by
one, so the faulty file fails alone there.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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
    create_stage_table,
    landed_path,
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
    engine.command("DROP TABLE IF EXISTS " + ", ".join(stage_table(engine, k) for k in keys))
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
        got = _normalize_chunk(engine, home, chunk, overrides, progress)
        out.update(got)
        normalized += [m for b in chunk if isinstance(m := got[b.manifest.key], Manifest)
                       and m is b.manifest]
    record_many(engine, home, normalized)  # the interim log rows, one insert
    return {k: out[k] for k in keys}


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
    with pa.memory_map(str(landed_path(home, key))) as source:
        df = pl.from_arrow(ipc.open_stream(source).read_all())
    assert isinstance(df, pl.DataFrame)
    return df


def _normalize_chunk(engine: Engine, home: Path, chunk: list[Begun],
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
    try:
        result = validate(clean(pl.concat(landed.values()), default_country=rule.default_country,
                                date_format=rule.date_format), keep=(FILE,))
    except Exception:  # noqa: BLE001 - some file's values broke the shared pass: one by one
        for i in landed:
            key = chunk[i].manifest.key
            out[key] = _alone(engine, home, key, overrides, progress)
        return out
    # seq: the file's row order, as polars.normalize numbers it
    valid = result.valid.select(FILE, *LOADED_FIELDS).with_columns(
        pl.int_range(pl.len(), dtype=pl.UInt64).over(FILE).alias("seq"))
    valid_of = valid.partition_by(FILE, as_dict=True, include_key=False)
    rejected_of = result.rejected.partition_by(FILE, as_dict=True, include_key=False)
    share = (time.perf_counter() - t0) / len(landed)
    rejects: list[tuple[Manifest, pa.Table]] = []
    for i in landed:
        m, t1 = chunk[i].manifest, time.perf_counter()
        score_sum = 0.0
        try:
            table = create_stage_table(engine, m.key, drop=False)
            if (v := valid_of.get((i,))) is not None:
                engine.insert_arrow(table, v.to_arrow())
                score_sum = one_file.count_valid(m, v)
        except Exception as exc:  # noqa: BLE001 - this file fails, the batch goes on
            out[m.key] = exc
            continue
        if (r := rejected_of.get((i,))) is not None:
            rejects.append((m, one_file.rejected_rows(landed[i].drop(FILE), r)))
            m.validation_rejected = r.height
        m.quality_mean = score_sum / m.valid if m.valid else 0.0
        m.status = Status.NORMALIZED
        m.seconds["normalize"] = share + time.perf_counter() - t1
        out[m.key] = m
    insert_rejects_of_files(engine, "validate", rejects)
    if progress:
        progress(sum(df.height for df in landed.values()))
    return out
