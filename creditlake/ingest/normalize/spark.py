"""The normalize stage on Spark: same inputs and outputs as normalize/polars.py (the landed
Arrow file in, the ClickHouse stage table + validation rejects + manifest out), so the land
stage before it and the load stage after it are shared with the embedded path.

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
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812

from creditlake.clickhouse.base import Engine
from creditlake.ingest.accounting import insert_rejects, record
from creditlake.ingest.manifest import (
    LOADED_FIELDS,
    Manifest,
    Status,
    create_stage_table,
    landed_path,
    load_manifest,
    open_landed,
    staging_dir,
)
from creditlake.ingest.normalize.common import reset
from creditlake.ingest.overrides import SourceOverrides, SourceRule
from creditlake.rules import spark as rules_spark

INSERT_BATCH_ROWS = 100_000
# A dedup window on the stage table so retried batches are dropped on a single server too
# (Replicated tables deduplicate blocks by default).
DEDUP_SETTINGS = "non_replicated_deduplication_window = 1000"


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
        "pk", *LOADED_FIELDS, rules_spark.record_hash().alias("record_hash"),
        F.col("_fatal").alias("fatal"),
        F.when(F.col("_fatal"), rules_spark.raw_row()).alias("raw_row"))
    # No shuffle: a map-only job over the landed Parquet (written by us, fixed row groups)
    # gets the same input splits every time, so task i always writes the same rows in
    # source order. A retried partition re-sends identical blocks: dedup tokens match.
    dest = reset_dir(out)
    result.write.partitionBy("pk", "fatal").parquet(str(dest))
    return dest


def normalize_many(engine: Engine, home: Path, keys: list[str], *, spark: SparkSession,
                   overrides: SourceOverrides | None = None,
                   work: Path | None = None) -> dict[str, Manifest]:
    """Normalize many partitions at once (a backfill), Spark doing the per-row work in one
    job. Returns the manifests by key; the load stage takes them as usual."""
    t0 = time.perf_counter()
    overrides = overrides or SourceOverrides()
    manifests: dict[str, Manifest] = {}
    inputs: list[tuple[int, Path, SourceRule]] = []
    for i, key in enumerate(keys):
        m = load_manifest(home, key)
        manifests[key] = m
        if reset(engine, home, m):
            continue
        landed = landed_to_parquet(
            landed_path(home, key), staging_dir(home, key) / "spark" / "landed.parquet")
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
        m.status = Status.NORMALIZED
        m.seconds["normalize"] = spark_seconds / len(inputs) + time.perf_counter() - t1
        record(engine, home, m)
    shutil.rmtree(work, ignore_errors=True)
    for _, landed, _ in inputs:
        landed.unlink(missing_ok=True)
    return manifests


def _publish(engine: Engine, m: Manifest, out: Path) -> None:
    """Stage table + rejects + quality figures of one partition from the Spark output."""
    table = create_stage_table(engine, m.key, order_by="source_row",
                               table_settings=DEDUP_SETTINGS)
    valid_dir = out / "fatal=false"
    if valid_dir.exists():
        batches = numbered(iter_parquet_batches(
            valid_dir, INSERT_BATCH_ROWS, [*LOADED_FIELDS, "record_hash"]))
        m.valid = insert_batches(engine, table, batches,
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
        insert_rejects(engine, m, "validate", rej)
        m.validation_rejected = rej.num_rows


def normalize(engine: Engine, home: Path, key: str, *, spark: SparkSession,
              overrides: SourceOverrides | None = None) -> Manifest:
    """Normalize one partition with Spark doing the per-row work."""
    return normalize_many(engine, home, [key], spark=spark, overrides=overrides)[key]


# ---------------------------------------------------------------- Parquet hand-off

def landed_to_parquet(landed: Path, out: Path, row_group_rows: int = 256_000) -> Path:
    """Stream the landed Arrow IPC file into Parquet that Spark executors can split."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open_landed(landed) as src:
        reader = ipc.open_stream(src)
        with pq.ParquetWriter(out, reader.schema) as w:
            for batch in reader:
                if batch.num_rows:
                    w.write_batch(batch, row_group_size=row_group_rows)
    return out


def iter_parquet_batches(directory: Path, batch_rows: int, columns: list[str] | None = None
                         ) -> Iterator[tuple[str, pa.RecordBatch]]:
    """(stable batch id, batch) over a Spark output directory, in file-name order."""
    for i, f in enumerate(sorted(directory.glob("part-*.parquet"))):
        pf = pq.ParquetFile(f)
        for j, batch in enumerate(pf.iter_batches(batch_size=batch_rows, columns=columns)):
            yield f"{i}.{j}", batch


def numbered(batches: Iterator[tuple[str, pa.RecordBatch]]
             ) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Each row its `seq` (the file-wide row order the load keeps the first row of a hash
    by): the part files in name order hold the rows in source order (see run_spark)."""
    n = 0
    for batch_id, batch in batches:
        seq = pa.array(np.arange(n, n + batch.num_rows, dtype=np.uint64))
        n += batch.num_rows
        yield batch_id, pa.RecordBatch.from_arrays([seq, *batch.columns],
                                                   names=["seq", *batch.schema.names])


def insert_batches(engine: Engine, table: str, batches: Iterator[tuple[str, pa.RecordBatch]],
                   token_prefix: str, settings: Mapping[str, Any] | None = None) -> int:
    """Insert each batch with insert_deduplication_token = <prefix>:<batch id>:<digest>.

    A retried partition re-sends identical blocks with identical tokens, which the server
    drops (Replicated tables always; MergeTree with non_replicated_deduplication_window)."""
    n = 0
    for batch_id, batch in batches:
        if batch.num_rows == 0:
            continue
        token = f"{token_prefix}:{batch_id}:{_digest(batch)}"
        engine.insert_arrow(table, pa.Table.from_batches([batch]),
                            settings={"insert_deduplicate": 1,
                                      "insert_deduplication_token": token, **(settings or {})})
        n += batch.num_rows
    return n


def _digest(batch: pa.RecordBatch) -> str:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, batch.schema) as w:
        w.write_batch(batch)
    return hashlib.sha1(sink.getvalue().to_pybytes()).hexdigest()[:16]


def reset_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
