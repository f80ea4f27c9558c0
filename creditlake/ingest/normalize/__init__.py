"""Stage 2, normalize: clean + validate the landed rows into the partition's stage table.

`normalize` is the one entry point (assets, CLI, benchmarks and tests call it): it honours
`Settings.processing` (CREDITLAKE_PROCESSING), or a per-run override. The backends are
sibling modules with the same shape: `polars.py`, `clickhouse.py` (the rules as SQL inside
the engine) and `spark.py`. `normalize_many` is the batch entry point (a run over many small
files): on Polars the small files share passes (`small_files.py`), elsewhere file by file.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from creditlake.clickhouse.base import Engine
from creditlake.config import Processing, check_processing
from creditlake.ingest.manifest import Manifest, Progress
from creditlake.ingest.overrides import SourceOverrides


@functools.cache
def spark_session(master: str | None, conf: tuple[tuple[str, str], ...]) -> Any:
    """One SparkSession per process, created on first use (never at import/definition load)."""
    from creditlake.rules.spark import session

    return session("creditlake", master, {"spark.ui.showConsoleProgress": "false", **dict(conf)})


def normalize(engine: Engine, home: Path, key: str, *, processing: Processing,
              backend: str | None = None, overrides: SourceOverrides | None = None,
              progress: Progress | None = None) -> Manifest:
    """Normalize one landed partition on `processing.backend` (or `backend`, a per-run
    override); every backend returns the same Manifest."""
    if backend:
        processing = replace(processing, backend=check_processing(backend))
    if processing.backend == "polars":
        from creditlake.ingest.normalize import polars

        return polars.normalize(engine, home, key, overrides=overrides, progress=progress)
    if processing.backend == "clickhouse":
        from creditlake.ingest.normalize import clickhouse
        from creditlake.rules.clickhouse import UnsupportedRule

        try:
            return clickhouse.normalize(engine, home, key, overrides=overrides,
                                        progress=progress)
        except UnsupportedRule:  # e.g. a source's date format the SQL rules cannot express
            from creditlake.ingest.normalize import polars

            return polars.normalize(engine, home, key, overrides=overrides, progress=progress)
    from creditlake.ingest.normalize import spark

    m = spark.normalize(engine, home, key, overrides=overrides,
                        spark=spark_session(processing.spark_master, processing.spark_conf))
    if progress:
        progress(m.rows_read)
    return m


def normalize_many(engine: Engine, home: Path, keys: Sequence[str], *, processing: Processing,
                   backend: str | None = None, overrides: SourceOverrides | None = None,
                   progress: Progress | None = None) -> dict[str, Manifest | Exception]:
    """normalize() of a batch's files; each key's outcome is its Manifest or the error that
    failed that file alone (the others go on)."""
    if backend:
        processing = replace(processing, backend=check_processing(backend))
    if processing.backend == "polars":
        from creditlake.ingest.normalize import small_files

        return small_files.normalize_many(engine, home, keys, overrides=overrides,
                                          progress=progress)
    out: dict[str, Manifest | Exception] = {}
    for key in keys:
        try:
            out[key] = normalize(engine, home, key, processing=processing,
                                 overrides=overrides, progress=progress)
        except Exception as exc:  # noqa: BLE001 - this file fails, the batch goes on
            out[key] = exc
    return out
