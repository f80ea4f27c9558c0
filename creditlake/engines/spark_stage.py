"""The normalize stage on Spark: same inputs and outputs as stages.normalize (the landed
Arrow file in, the ClickHouse stage table + validation rejects + manifest out), so
stages.land before it and stages.load after it are shared with the embedded path.

One Spark pass computes clean + validate + record_hash and writes Parquet split by `fatal`
(deterministic file layout); the driver then streams the valid Parquet into the stage table in
batches carrying insert_deduplication_tokens, and reads the small aggregates and rejects.
Production: Spark writes that Parquet to shared storage (S3) and the batches are inserted from
the executors, or ClickHouse pulls it with INSERT ... SELECT FROM s3Cluster(...).
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812

from creditlake.engine.base import Engine
from creditlake.engines import spark as rules_spark
from creditlake.ingest import stages
from creditlake.rules.identity import clickhouse_hash_sql
from creditlake.rules.overrides import SourceOverrides, SourceRule

INSERT_BATCH_ROWS = 100_000
# Stage table as in stages.normalize, plus a dedup window so retried batches are dropped
# on a single server too (Replicated tables deduplicate blocks by default).
DEDUP_SETTINGS = "SETTINGS non_replicated_deduplication_window = 1000"


def create_stage_table(engine: Engine, key: str) -> str:
    table = stages.stage_table(engine, key)
    engine.command(f"DROP TABLE IF EXISTS {table}")
    engine.command(
        f"CREATE TABLE {table} ({stages.STAGE_COLUMNS}, record_hash String "
        f"DEFAULT {clickhouse_hash_sql()}) ENGINE = MergeTree ORDER BY source_row "
        f"{DEDUP_SETTINGS}")
    return table


def run_spark(spark: SparkSession, inputs: list[tuple[int, Path, SourceRule]],
              out: Path) -> Path:
    """clean + validate + hash for many landed partitions in one Spark job.

    inputs: (index, landed Parquet, source rule). Output: out/pk=<index>/fatal=<bool>/."""
    groups: dict[tuple, list[int]] = {}
    for i, _, rule in inputs:
        groups.setdefault((rule.default_country, rule.date_format), []).append(i)
    frames = [spark.read.parquet(str(p)).withColumn("pk", F.lit(i)) for i, p, _ in inputs]
    df = frames[0]
    for f in frames[1:]:
        df = df.unionByName(f)
    df = df.withColumn("source_row", F.col("source_row").cast("long"))
    parts = []
    for (country, date_format), members in groups.items():
        sub = df.filter(F.col("pk").isin(members)) if len(groups) > 1 else df
        cleaned = rules_spark.clean(rules_spark.keep_raw(sub),
                                    default_country=country, date_format=date_format)
        parts.append(rules_spark.validate(cleaned))
    v = parts[0]
    for p in parts[1:]:
        v = v.unionByName(p)
    result = v.select(
        "pk", *stages.LOADED_FIELDS, rules_spark.record_hash().alias("record_hash"),
        F.col("_fatal").alias("fatal"),
        F.when(F.col("_fatal"), rules_spark.raw_row()).alias("raw_row"))
    # No shuffle: a map-only job over the landed Parquet (written by us, fixed row groups)
    # gets the same input splits every time, so task i always writes the same rows in
    # source order. A retried partition re-sends identical blocks: dedup tokens match.
    dest = rules_spark.reset_dir(out)
    result.write.partitionBy("pk", "fatal").parquet(str(dest))
    return dest


def normalize_many(engine: Engine, home: Path, keys: list[str], *, spark: SparkSession,
                   overrides: SourceOverrides | None = None,
                   work: Path | None = None) -> dict[str, stages.Manifest]:
    """stages.normalize for many partitions at once (a backfill), Spark doing the per-row
    work in one job. Returns the manifests by key; load them with stages.load as usual."""
    t0 = time.perf_counter()
    overrides = overrides or SourceOverrides()
    manifests: dict[str, stages.Manifest] = {}
    inputs: list[tuple[int, Path, SourceRule]] = []
    for i, key in enumerate(keys):
        m = stages.load_manifest(home, key)
        stages._delete_rejects(engine, key, "validate")
        m.valid = m.validation_rejected = 0
        m.quality_histogram = [0] * 10
        manifests[key] = m
        if m.status in ("quarantined", "failed"):
            engine.command(f"DROP TABLE IF EXISTS {stages.stage_table(engine, key)}")
            stages.save_manifest(home, m)
            stages.write_log(engine, m)
            continue
        landed = rules_spark.landed_to_parquet(
            stages.staging_dir(home, key) / "landed.arrow",
            stages.staging_dir(home, key) / "spark" / "landed.parquet")
        inputs.append((i, landed, overrides.for_source(m.source_file)))
    if not inputs:
        return manifests
    work = work or home / "staging" / "spark" / hashlib.sha1(
        "\n".join(keys).encode()).hexdigest()[:16]
    out = run_spark(spark, inputs, work / "normalized")
    spark_seconds = time.perf_counter() - t0
    for i, _, _ in inputs:
        key = keys[i]
        t1 = time.perf_counter()
        m = manifests[key]
        _publish(engine, m, out / f"pk={i}")
        m.status = "normalized"
        m.seconds["normalize"] = spark_seconds / len(inputs) + time.perf_counter() - t1
        stages.save_manifest(home, m)
        stages.write_log(engine, m)
    shutil.rmtree(work, ignore_errors=True)
    for _, landed, _ in inputs:
        landed.unlink(missing_ok=True)
    return manifests


def _publish(engine: Engine, m: stages.Manifest, out: Path) -> None:
    """Stage table + rejects + quality figures of one partition from the Spark output."""
    table = create_stage_table(engine, m.key)
    valid_dir = out / "fatal=false"
    if valid_dir.exists():
        batches = rules_spark.iter_parquet_batches(
            valid_dir, INSERT_BATCH_ROWS, [*stages.LOADED_FIELDS, "record_hash"])
        m.valid = rules_spark.insert_batches(engine, table, batches,
                                             token_prefix=f"{m.key}:stage")
        scores = pq.read_table(valid_dir, columns=["data_quality_score"]).column(0)
        m.quality_mean = float(pc.sum(scores).as_py() or 0.0) / m.valid if m.valid else 0.0
        bins = pc.cast(pc.min_element_wise(pc.floor(pc.multiply(scores, 10)), 9), pa.int32())
        for item in pc.value_counts(bins).to_pylist():
            m.quality_histogram[max(0, int(item["values"]))] += int(item["counts"])
    fatal_dir = out / "fatal=true"
    if fatal_dir.exists():
        rej = pq.read_table(fatal_dir, columns=["source_file", "source_row", "raw_row",
                                                "validation_errors"])
        rej = rej.rename_columns(["source_file", "source_row", "raw_row", "reasons"])
        stages._insert_rejects(engine, m, "validate", rej)
        m.validation_rejected = rej.num_rows


def normalize(engine: Engine, home: Path, key: str, *, spark: SparkSession,
              overrides: SourceOverrides | None = None) -> stages.Manifest:
    """stages.normalize with Spark doing the per-row work (one partition)."""
    return normalize_many(engine, home, [key], spark=spark, overrides=overrides)[key]
