"""Run the three stages for files directly (no Dagster): tests, benchmarks, tooling.

The CLI and the Dagster sensor run the same stages through the Dagster assets.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from creditlake import quality
from creditlake.clickhouse.base import Engine
from creditlake.config import Processing
from creditlake.ingest.accounting import block
from creditlake.ingest.land import land
from creditlake.ingest.load import load
from creditlake.ingest.manifest import Manifest, Status
from creditlake.ingest.normalize import normalize
from creditlake.ingest.overrides import SourceOverrides
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
                max_failure_rate: float | None = None) -> Manifest:
    entry = Registry(home).register(path, landing_dir)
    land(engine, home, entry, overrides=overrides)
    m = normalize(engine, home, entry.key, processing=processing, overrides=overrides)
    if max_failure_rate is not None and m.status == Status.NORMALIZED \
            and m.failure_rate > max_failure_rate:
        return block(engine, home, entry.key, quality.failure_rate_message(
            m.failure_rate, max_failure_rate))
    return load(engine, home, entry.key)


def ingest_paths(engine: Engine, home: Path, paths: Iterable[Path], **kw) -> list[Manifest]:
    return [ingest_file(engine, home, p, **kw) for p in expand_paths(paths)]
