"""`creditlake release KEY`: load the held (valid, staged) rows of a blocked file."""

from __future__ import annotations

from pathlib import Path

from creditlake.clickhouse.base import Engine
from creditlake.ingest.load import load
from creditlake.ingest.manifest import Manifest, Status, load_manifest, save_manifest


class NotBlocked(ValueError):
    """Only a blocked file has held rows to release."""


def release(engine: Engine, home: Path, key: str) -> Manifest:
    """Load a blocked file's staged rows as they are (no policy: the operator decided). Its
    ingestion_log row moves the rows from held to loaded/duplicates; its rejects stay."""
    m = load_manifest(home, key)
    if m.status != Status.BLOCKED:
        raise NotBlocked(f"{key}: status is {m.status}, not blocked; nothing is held")
    m.message = f"released by operator after: {m.message}" if m.message else "released"
    save_manifest(home, m)
    return load(engine, home, key)
