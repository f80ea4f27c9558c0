"""Dagster side of the processing switch: run config for the normalize asset.

Per deployment: CREDITLAKE_PROCESSING=spark. Per run (one big backfill), launch the ingest
job with
    ops:
      normalize__contacts:
        config: {processing: spark}
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class ProcessingConfig(dg.Config):
    processing: str = Field(
        default="",
        description="polars | clickhouse | spark; empty = CREDITLAKE_PROCESSING (default polars).")
