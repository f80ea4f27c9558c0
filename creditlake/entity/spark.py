"""The scale-out path: the same model and prepared features, linked by Splink's Spark backend.

Features are prepared exactly as on the embedded path (prepare.py), so the two backends see
identical inputs; the Spark settings are the model's, rebuilt for the Spark SQL dialect
(EntityModel.splink_settings).
"""

from __future__ import annotations

import tempfile
from typing import Any


def spark_session(master: str | None = None, conf: dict[str, str] | None = None) -> Any:
    """A SparkSession with Splink's similarity UDF jar (jaro_winkler etc.) on the classpath."""
    from splink.internals.spark.jar_location import similarity_jar_location

    from creditlake.rules.spark import session

    jar = similarity_jar_location()
    spark = session("creditlake-entity", master, {
        "spark.jars": jar, "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false", **(conf or {})})
    # A session created earlier (getOrCreate) lacks the jar: add it to this session.
    spark.sql(f"ADD JAR '{jar}'")
    if not spark.sparkContext.getCheckpointDir():
        spark.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="splink-ckpt-"))
    return spark


def spark_api(spark: Any | None = None, partitions: int | None = None) -> Any:
    """Splink SparkAPI; small `partitions` keep tiny inputs from spawning 200 tasks."""
    from splink import SparkAPI

    spark = spark or spark_session()
    return SparkAPI(spark_session=spark, break_lineage_method="persist",
                    num_partitions_on_repartition=partitions)
