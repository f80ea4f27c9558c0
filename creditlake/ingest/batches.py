"""Which files share one ingest run: many small files are one Dagster run over a range of
`landing_files` partitions (each file stays its own partition, manifest, ingestion_log row
and reconciliation); big files get a run each, where start-up is noise anyway.

A partition range is contiguous in the partition order, so new keys are registered grouped by
format (`registration_order`) and a batch never spans a key it does not contain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SMALL_FILE_BYTES = 64 * 1024 * 1024  # at ~50K rows/s a 64 MB file takes seconds: run it alone
MAX_BATCH_FILES = 500                # one failure or retry never re-plays more than this
# ...nor more bytes than this: a batch is for files whose start-up is most of their cost
# (70 Parquet files of 1M rows, 34 MB each, were one 70M-row run: no file was loaded, and so
# queryable, before all 70 had landed and been normalized)
MAX_BATCH_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Item:
    key: str
    format: str
    size: int


def registration_order(items: Sequence[Item]) -> list[Item]:
    """New partitions in this order make every format's small files one contiguous range."""
    return sorted(items, key=lambda i: (i.format, i.size > SMALL_FILE_BYTES))


def plan_batches(items: Sequence[Item], partition_order: Sequence[str]) -> list[list[Item]]:
    """Split items into runs: each run is one format and either one big file or a contiguous
    range (in partition_order) of at most MAX_BATCH_FILES small files and MAX_BATCH_BYTES.
    Runs come out in the order their first file was given, so loads (and dedup: the first copy
    wins) follow it."""
    position = {k: i for i, k in enumerate(partition_order)}
    runs: list[list[Item]] = []
    by_format: dict[str, list[Item]] = {}
    for item in items:
        if item.size > SMALL_FILE_BYTES:
            runs.append([item])
        else:
            by_format.setdefault(item.format, []).append(item)
    for group in by_format.values():
        group.sort(key=lambda i: position[i.key])
        current: list[Item] = []
        for item in group:
            if current and (position[item.key] != position[current[-1].key] + 1
                            or len(current) >= MAX_BATCH_FILES
                            or sum(i.size for i in current) + item.size > MAX_BATCH_BYTES):
                runs.append(current)
                current = []
            current.append(item)
        if current:
            runs.append(current)
    first = {item.key: n for n, item in enumerate(items)}
    runs.sort(key=lambda run: min(first[i.key] for i in run))
    return runs
