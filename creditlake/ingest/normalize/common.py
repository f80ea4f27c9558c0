"""What every normalize backend does first and last: forget the partition's previous normalize
output (begin), and account the result (finish)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from creditlake.clickhouse.base import Engine
from creditlake.ingest.accounting import delete_rejects, record
from creditlake.ingest.manifest import FINISHED, Manifest, Status, load_manifest, stage_table
from creditlake.ingest.overrides import SourceOverrides, SourceRule


@dataclass
class Begun:
    manifest: Manifest
    rule: SourceRule  # the source's overrides (default country, date format)
    t0: float         # perf_counter at the start: the stage's seconds
    done: bool        # nothing to normalize (quarantined or failed while landing): accounted


def begin(engine: Engine, home: Path, key: str, overrides: SourceOverrides | None, *,
          drop_stage: bool = True) -> Begun:
    """The prologue of every backend: the manifest, its reset, its rule and the timer.
    drop_stage=False: the caller has dropped the stage table already (a batch: one DROP)."""
    t0 = time.perf_counter()
    m = load_manifest(home, key)
    done = reset(engine, home, m, drop_stage=drop_stage)
    return Begun(m, (overrides or SourceOverrides()).for_source(m.source_file), t0, done)


def reset(engine: Engine, home: Path, m: Manifest, *, drop_stage: bool = True) -> bool:
    """Drop the stage table and validation rejects of a re-run; True when the partition has
    nothing to normalize (quarantined or failed while landing) - then it is accounted here."""
    if drop_stage:
        engine.command(f"DROP TABLE IF EXISTS {stage_table(engine, m.key)}")
    delete_rejects(engine, m.key, "validate")
    m.valid = m.validation_rejected = 0
    m.quality_histogram = [0] * 10
    m.stage = ""  # rows of an earlier batch's table are abandoned (dropped with that table)
    if m.status in FINISHED:
        record(engine, home, m)
        return True
    return False


def normalized(m: Manifest, t0: float) -> Manifest:
    """The epilogue before accounting: the file is normalized, its stage time set."""
    m.status = Status.NORMALIZED
    m.seconds["normalize"] = time.perf_counter() - t0
    return m


def finish(engine: Engine, home: Path, m: Manifest, t0: float) -> Manifest:
    """normalized() + the interim log row: the file is accounted for even if loading never
    runs."""
    record(engine, home, normalized(m, t0))
    return m
