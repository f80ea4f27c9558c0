"""What every normalize backend does first: forget the partition's previous normalize output."""

from __future__ import annotations

from pathlib import Path

from creditlake.clickhouse.base import Engine
from creditlake.ingest.accounting import delete_rejects, record
from creditlake.ingest.manifest import FINISHED, Manifest, stage_table


def reset(engine: Engine, home: Path, m: Manifest) -> bool:
    """Drop the stage table and validation rejects of a re-run; True when the partition has
    nothing to normalize (quarantined or failed while landing) - then it is accounted here."""
    engine.command(f"DROP TABLE IF EXISTS {stage_table(engine, m.key)}")
    delete_rejects(engine, m.key, "validate")
    m.valid = m.validation_rejected = 0
    m.quality_histogram = [0] * 10
    if m.status in FINISHED:
        record(engine, home, m)
        return True
    return False
