"""Every DuckDB connection the entity package opens, and where it spills.

An in-memory DuckDB connection spills to `.tmp/` in the current working directory by
default: a 1M-record run once left 18 GB there. Connections made here spill into the run's own
directory instead (`spill_directory`: $CREDITLAKE_HOME/tmp/duckdb/<run id>, removed when the
run ends, whether it succeeded or not), or outside a run into one per-process directory under
the system temp dir, removed at exit. The directory is passed in by the caller (the entity
run knows the creditlake home); connections pick it up from a context variable so that every
helper that opens its own connection follows it without threading a path through each call.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import duckdb

SPILL_SUBDIR = Path("tmp") / "duckdb"  # under the creditlake home
_spill_dir: ContextVar[Path | None] = ContextVar("creditlake_duckdb_spill_dir", default=None)


def run_spill_dir(home: Path, run_id: str) -> Path:
    return home / SPILL_SUBDIR / run_id


@contextmanager
def spill_directory(path: Path) -> Iterator[Path]:
    """Connections opened inside spill into `path`; it is removed on exit, even on error."""
    path.mkdir(parents=True, exist_ok=True)
    token = _spill_dir.set(path)
    try:
        yield path
    finally:
        _spill_dir.reset(token)
        shutil.rmtree(path, ignore_errors=True)


@functools.cache
def _process_spill_dir() -> Path:
    """Outside an entity run (tests, benchmarks, training): one directory per process."""
    path = Path(tempfile.mkdtemp(prefix=f"creditlake-duckdb-{os.getpid()}-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def current_spill_dir() -> Path:
    return _spill_dir.get() or _process_spill_dir()


def connect(memory_limit: str | None = None,
            threads: int | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    spill = str(current_spill_dir()).replace("'", "''")
    con.execute(f"SET temp_directory = '{spill}'")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con
