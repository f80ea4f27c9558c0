"""Which engine does the per-row work of the normalize stage: configuration, not code.

CREDITLAKE_PROCESSING=polars (default, embedded) | spark (PySpark; CREDITLAKE_SPARK_MASTER,
default local[2], and CREDITLAKE_SPARK_CONF, a JSON object of extra Spark settings).
A Dagster run can override it for one big backfill (asset config `processing`).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from creditlake.engine.base import Engine
from creditlake.ingest import stages
from creditlake.rules.overrides import SourceOverrides

ENGINES = ("polars", "spark")


def processing_from_env(env: dict[str, str] | None = None) -> str:
    value = (env if env is not None else os.environ).get("CREDITLAKE_PROCESSING", "polars")
    return check(value or "polars")


def check(value: str) -> str:
    value = value.strip().lower()
    if value not in ENGINES:
        raise ValueError(f"CREDITLAKE_PROCESSING must be one of {ENGINES}, not {value!r}")
    return value


@functools.cache
def spark_session() -> Any:
    """One SparkSession per process, created on first use (never at import/definition load)."""
    from creditlake.engines.spark import session

    conf = json.loads(os.environ.get("CREDITLAKE_SPARK_CONF", "{}"))
    return session("creditlake", os.environ.get("CREDITLAKE_SPARK_MASTER"),
                   {"spark.ui.showConsoleProgress": "false", **conf})


def normalize(engine: Engine, home: Path, key: str, *, processing: str | None = None,
              overrides: SourceOverrides | None = None, progress=None) -> stages.Manifest:
    """stages.normalize on the configured engine; both return the same Manifest."""
    engine_name = check(processing) if processing else processing_from_env()
    if engine_name == "polars":
        return stages.normalize(engine, home, key, overrides=overrides, progress=progress)
    from creditlake.engines import spark_stage

    m = spark_stage.normalize(engine, home, key, spark=spark_session(), overrides=overrides)
    if progress:
        progress(m.rows_read)
    return m
