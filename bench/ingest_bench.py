"""Ingest benchmark: N messy rows (default 2M) as CSV and Parquet, end to end on the embedded
engine (detect, read, map, clean, Pandera-validate, hash, dedup, load), per-stage timings.

    uv run python bench/ingest_bench.py [--rows 2000000] [--formats csv,parquet] [--dagster]

Runs each format into a fresh chDB home so the numbers don't depend on earlier loads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

from creditlake import samples
from creditlake.clickhouse import connect_engine
from creditlake.clickhouse.ddl import migrate
from creditlake.config import load_settings
from creditlake.ingest.pipeline import ingest_file

OUT = Path(__file__).parent / "out"


def data_file(rows: int, fmt: str) -> Path:
    path = OUT / f"people-{rows}.{fmt}"
    if not path.exists():
        t = time.perf_counter()
        samples.write(samples.styled(samples.people(rows), "crm"), path, fmt)
        print(f"generated {path.name} ({path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - t:.1f}s")
    return path


def _cpu() -> float:
    """User+system CPU seconds of this process (chDB runs in-process, so this is all of it):
    a figure that, unlike wall time, does not depend on what else the machine is doing."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run(rows: int, fmt: str, use_dagster: bool) -> dict:
    path = data_file(rows, fmt)
    home = Path(tempfile.mkdtemp(prefix=f"bench-{fmt}-"))
    settings = load_settings({"CREDITLAKE_HOME": str(home)})
    try:
        cpu0 = _cpu()
        t0 = time.perf_counter()
        if use_dagster:
            from cli.runner import ingest_with_dagster

            m = ingest_with_dagster(settings, [path], max_failure_rate=1.0)[0].manifest
        else:
            engine = connect_engine(settings, role="bench")  # the owner, as in production
            migrate(engine)
            m = ingest_file(engine, home, path, processing=settings.processing,
                            max_failure_rate=None)
            engine.close()
        wall = time.perf_counter() - t0
        cpu = _cpu() - cpu0
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert m.rows_read == m.loaded + m.duplicates + m.rejected, "reconciliation failed"
    return {"format": fmt, "rows_read": m.rows_read, "loaded": m.loaded,
            "duplicates": m.duplicates, "rejected": m.rejected,
            "file_mb": round(path.stat().st_size / 1e6, 1), "seconds": round(wall, 2),
            "rows_per_s": round(m.rows_read / wall), "cpu_seconds": round(cpu, 1),
            "rows_per_cpu_s": round(m.rows_read / cpu), "dagster": use_dagster,
            "stage_seconds": {k: round(v, 2) for k, v in m.seconds.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--formats", default="csv,parquet")
    ap.add_argument("--dagster", action="store_true", help="run through the Dagster job")
    args = ap.parse_args()
    results = [run(args.rows, f, args.dagster) for f in args.formats.split(",")]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    doc = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                      f"{platform.python_version()}", "load_average": os.getloadavg(),
           "peak_rss_mb": round(peak_mb),
           "results": results}
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
