"""Dagster side of the engine switch: run config for the normalize asset and a PySpark
resource for deployments that want Dagster to own the Spark session.

Per deployment: CREDITLAKE_PROCESSING=spark. Per run (one big backfill), launch the ingest
job with
    ops:
      normalize__contacts:
        config: {processing: spark}
"""

from __future__ import annotations

import json
import os

import dagster as dg
from dagster_pyspark import PySparkResource
from pydantic import Field


class ProcessingConfig(dg.Config):
    processing: str = Field(
        default="",
        description="polars | spark; empty = CREDITLAKE_PROCESSING (default polars).")


def spark_resource_from_env() -> PySparkResource:
    """PySparkResource with creditlake's required settings plus CREDITLAKE_SPARK_CONF."""
    conf = {
        "spark.master": os.environ.get("CREDITLAKE_SPARK_MASTER", "local[2]"),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.legacy.timeParserPolicy": "CORRECTED",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        **json.loads(os.environ.get("CREDITLAKE_SPARK_CONF", "{}")),
    }
    return PySparkResource(spark_config=conf)
