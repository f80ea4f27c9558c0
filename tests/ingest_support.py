"""Test set-up shared by the stage-level ingest tests: write files, register and land them."""

from __future__ import annotations

from pathlib import Path

from creditlake.clickhouse.base import Engine
from creditlake.ingest.accounting import without_rejects
from creditlake.ingest.land import land
from creditlake.ingest.overrides import SourceOverrides
from creditlake.ingest.registry import Registry


def land_files(engine: Engine, home: Path, d: Path, files: dict[str, str], *,
               overrides: SourceOverrides | None = None) -> list[str]:
    """Write `files` (name -> text) into d, register and land each; their partition keys."""
    d.mkdir(exist_ok=True)
    reg = Registry(home)
    keys = []
    for name, text in files.items():
        (d / name).write_text(text)
        keys.append(reg.register(d / name, None).key)
    with without_rejects(engine, keys):
        for key in keys:
            land(engine, home, reg.get(key), overrides=overrides)
    return keys
