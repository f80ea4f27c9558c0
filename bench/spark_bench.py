"""Spark path benchmark: N messy rows (default 1M) as CSV, per stage, on local[N] Spark.

    uv run python bench/spark_bench.py [--rows 1000000] [--master local[2]] [--polars]

Stages: land (shared Python readers -> Arrow), Spark normalize (clean + validate + hash ->
Parquet, one job), publish (Parquet -> chDB stage table in 100K-row batches with dedup
tokens), load (dedup + insert into records, ClickHouse SQL). --polars also times the
embedded normalize on the same landed file for comparison. Uses its own chDB home.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from creditlake import samples
from creditlake.clickhouse import open_engine
from creditlake.clickhouse.ddl import migrate
from creditlake.config import Processing, load_settings
from creditlake.ingest.land import land
from creditlake.ingest.load import load
from creditlake.ingest.manifest import Status, landed_path, load_manifest, save_manifest
from creditlake.ingest.normalize import normalize
from creditlake.ingest.normalize import spark as spark_stage
from creditlake.ingest.overrides import SourceOverrides
from creditlake.ingest.registry import Registry
from creditlake.rules import spark as rules_spark

OUT = Path(__file__).parent / "out"


def data_file(rows: int) -> Path:
    path = OUT / f"people-{rows}.csv"
    if not path.exists():
        samples.write(samples.styled(samples.people(rows), "crm"), path, "csv")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--polars", action="store_true", help="also time the embedded normalize")
    args = ap.parse_args()
    path = data_file(args.rows)
    home = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    settings = load_settings({"CREDITLAKE_HOME": str(home)})
    engine = open_engine(settings)
    migrate(engine)
    t = {}
    try:
        t0 = time.perf_counter()
        spark = rules_spark.session("creditlake-bench", args.master, {
            "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": "4", "spark.driver.memory": "4g"})
        t["spark_startup"] = time.perf_counter() - t0

        entry = Registry(home).register(path, path.parent)
        t0 = time.perf_counter()
        m = land(engine, home, entry)
        t["land"] = time.perf_counter() - t0

        if args.polars:
            t0 = time.perf_counter()
            normalize(engine, home, entry.key, processing=Processing())
            t["polars_normalize"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        landed = spark_stage.landed_to_parquet(
            landed_path(home, entry.key), home / "b" / "landed.parquet")
        t["arrow_to_parquet"] = time.perf_counter() - t0
        rule = SourceOverrides().for_source(m.source_file)
        t0 = time.perf_counter()
        out = spark_stage.run_spark(spark, [(0, landed, rule)], home / "b" / "normalized")
        t["spark_normalize"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        m = load_manifest(home, entry.key)
        spark_stage._publish(engine, m, out / "pk=0")
        m.status = Status.NORMALIZED
        save_manifest(home, m)
        t["publish_to_stage_table"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        m = load(engine, home, entry.key)
        t["load"] = time.perf_counter() - t0
        spark.stop()
    finally:
        engine.close()
        shutil.rmtree(home, ignore_errors=True)
    assert m.rows_read == m.loaded + m.duplicates + m.rejected, "reconciliation failed"
    rows = m.rows_read
    doc = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load avg "
                   f"{os.getloadavg()[0]:.1f} at the end",
        "master": args.master, "rows": rows, "file_mb": round(path.stat().st_size / 1e6, 1),
        "loaded": m.loaded, "duplicates": m.duplicates, "rejected": m.rejected,
        "seconds": {k: round(v, 2) for k, v in t.items()},
        "rows_per_s": {
            "spark_normalize": round(rows / t["spark_normalize"]),
            "spark_normalize_plus_publish": round(
                rows / (t["spark_normalize"] + t["publish_to_stage_table"])),
            "end_to_end_excl_startup": round(rows / sum(
                v for k, v in t.items() if k not in ("spark_startup", "polars_normalize"))),
            **({"polars_normalize": round(rows / t["polars_normalize"])} if args.polars
               else {}),
        },
    }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
