"""Run the three stages for files directly (no Dagster): tests, benchmarks, tooling.

The CLI and the Dagster sensor run the same stages through the Dagster assets.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from creditlake.clickhouse.base import Engine
from creditlake.config import Processing
from creditlake.ingest.land import land
from creditlake.ingest.load import load
from creditlake.ingest.manifest import Manifest
from creditlake.ingest.normalize import normalize
from creditlake.ingest.overrides import SourceOverrides
from creditlake.ingest.policy import RejectPolicy
from creditlake.ingest.registry import Registry


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, directories walked recursively (hidden files skipped), sorted."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file()
                          and not any(part.startswith(".") for part in f.relative_to(p).parts))
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such file or directory: {p}")
    return out


def ingest_file(engine: Engine, home: Path, path: Path, *, processing: Processing,
                landing_dir: Path | None = None, overrides: SourceOverrides | None = None,
                policy: RejectPolicy | None = None) -> Manifest:
    overrides = overrides or SourceOverrides()
    entry = Registry(home).register(path, landing_dir)
    land(engine, home, entry, overrides=overrides)
    normalize(engine, home, entry.key, processing=processing, overrides=overrides)
    return load(engine, home, entry.key, policy=policy or RejectPolicy(),
                rule=overrides.for_source(entry.name))


def ingest_paths(engine: Engine, home: Path, paths: Iterable[Path], **kw) -> list[Manifest]:
    return [ingest_file(engine, home, p, **kw) for p in expand_paths(paths)]
