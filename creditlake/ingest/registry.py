"""Partition registry: partition key <-> file on disk.

A partition is one version of one file, keyed "<relative name>@<content hash prefix>", so the
same file dropped twice maps to the same key (not re-ingested) and a changed file gets a new one.
The registry is a directory of small JSON files under $CREDITLAKE_HOME/partitions, shared by
the sensor, the CLI and the assets (which may run in other processes).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from creditlake.readers.detect import detect_format

_UNSAFE = re.compile(r"[^A-Za-z0-9._/@+-]+")
HASH_CHARS = 16


@dataclass(frozen=True)
class LandingFile:
    key: str
    path: str          # absolute path of the file
    name: str          # display name (relative to the landing dir when inside it)
    size: int
    mtime_ns: int
    sha256: str
    format: str = ""        # detected by content once, at registration (readers.detect_format)
    unrecognized: str = ""  # why no reader recognizes it (format == UNRECOGNIZED)


def content_hash(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def display_name(path: Path, landing_dir: Path | None) -> str:
    path = path.resolve()
    if landing_dir is not None:
        try:
            return path.relative_to(landing_dir.resolve()).as_posix()
        except ValueError:
            pass
    return path.name


def partition_key(name: str, sha256: str) -> str:
    return f"{_UNSAFE.sub('_', name)}@{sha256[:HASH_CHARS]}"


class Registry:
    def __init__(self, home: Path) -> None:
        self.dir = home / "partitions"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._stat_cache: dict[str, LandingFile] = {}

    def _file(self, key: str) -> Path:
        digest = hashlib.sha1(key.encode()).hexdigest()[:20]
        return self.dir / f"{digest}.json"

    def register(self, path: Path, landing_dir: Path | None = None) -> LandingFile:
        """Hash (unless size+mtime are unchanged since last time) and record the file."""
        path = path.resolve()
        st = path.stat()
        cached = self._stat_cache.get(str(path))
        if cached and cached.size == st.st_size and cached.mtime_ns == st.st_mtime_ns:
            return cached
        sha = content_hash(path)
        name = display_name(path, landing_dir)
        fmt, reason = detect_format(path)
        entry = LandingFile(partition_key(name, sha), str(path), name, st.st_size,
                            st.st_mtime_ns, sha, fmt, reason)
        target = self._file(entry.key)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(entry)))
        tmp.replace(target)
        self._stat_cache[str(path)] = entry
        return entry

    def get(self, key: str) -> LandingFile:
        target = self._file(key)
        if not target.exists():
            raise KeyError(f"partition {key!r} is not registered (file never landed?)")
        return LandingFile(**json.loads(target.read_text()))

    def all(self) -> list[LandingFile]:
        return [LandingFile(**json.loads(p.read_text())) for p in sorted(self.dir.glob("*.json"))]
