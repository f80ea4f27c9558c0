"""Entity-resolution speed: N generated people records (default 1M) end to end on chDB.

    uv run python bench/entity_speed.py [--records 1000000] [--keep DIR]

Phase 1 (not timed) generates records with realistic typo variants and loads them into
`records` of a fresh chDB directory. Phase 2 runs in a fresh subprocess so its peak RSS is
the resolution's own: read records from ClickHouse -> prepare -> Splink (DuckDB) predict ->
cluster -> write entities / entity_features / golden_records, with the shipped model. It
prints wall time, peak RSS, per-stage timings, pairwise precision/recall against the
generator's truth and the machine load. Phase 3 (optional, --incremental N) adds N more
records and times an incremental run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def resolve_phase(path: str, mode: str, memory_limit: str) -> None:
    logging.disable(logging.WARNING)
    from creditlake.clickhouse import ClickHouseEngine
    from creditlake.entity.run import run_entities

    t = time.perf_counter()
    eng = ClickHouseEngine(f"chdb://{path}", "bench")
    # The platform's entity run: the re-estimation decision included (these records fill the
    # features like the shipped model's training data, so it keeps the model).
    run = run_entities(eng, Path(path) / "home", mode=mode, memory_limit=memory_limit)
    res = run.result
    wall = time.perf_counter() - t
    truth = eng.query_rows("""
        WITH a AS (
            SELECT e.entity_id AS entity_id,
                   JSONExtractInt(r.metadata, 'ref') AS ref
            FROM bench.entities AS e FINAL
            JOIN bench.records AS r ON toString(r.id) = e.record_id)
        SELECT
            (SELECT sum(c * (c - 1) / 2) FROM (SELECT count() c FROM a GROUP BY entity_id, ref)),
            (SELECT sum(c * (c - 1) / 2) FROM (SELECT count() c FROM a GROUP BY entity_id)),
            (SELECT sum(c * (c - 1) / 2) FROM (SELECT count() c FROM a GROUP BY ref))
    """)[0]
    tp, predicted, actual = (float(x) for x in truth)
    eng.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = usage.ru_maxrss / 1024
    out = {
        "mode": res.mode, "estimation": run.estimation.status, "records_in": res.records_in,
        "wall_seconds": round(wall, 1),
        "peak_rss_mb": round(peak_mb),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1), "timings": res.timings,
        "links": res.links,
        "candidates": res.candidates, "entities_total": res.entities_total,
        "size_distribution": res.size_distribution,
        "precision": round(tp / predicted, 4) if predicted else None,
        "recall": round(tp / actual, 4) if actual else None,
        "load_avg": os.getloadavg(),
    }
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--incremental", type=int, default=0,
                    help="then add this many records and time an incremental run")
    ap.add_argument("--memory-limit", default="2GB", help="DuckDB memory limit")
    ap.add_argument("--keep", help="chDB directory to use/keep (default: temporary)")
    ap.add_argument("--resolve-only", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="full", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.resolve_only:
        resolve_phase(args.resolve_only, args.mode, args.memory_limit)
        return
    path = args.keep or tempfile.mkdtemp(prefix="entity_speed_")
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    total = args.records + args.incremental
    load_dir = path
    # Generate once with the final size, load the first `records` now, the rest later:
    # the incremental batch then holds duplicates of people already resolved.
    _load_slice(load_dir, total, 0, args.records)
    cmd = [sys.executable, __file__, "--resolve-only", path, "--memory-limit",
           args.memory_limit]
    subprocess.run(cmd + ["--mode", "full"], check=True)
    if args.incremental:
        _load_slice(load_dir, total, args.records, total)
        subprocess.run(cmd + ["--mode", "incremental"], check=True)
    print(f"load average after: {os.getloadavg()}; chDB dir {path}", file=sys.stderr)


def _load_slice(path: str, total: int, start: int, stop: int) -> None:
    from creditlake.clickhouse import ClickHouseEngine
    from creditlake.clickhouse.ddl import migrate
    from creditlake.entity.synthetic import generate_people, to_records_table

    t = time.perf_counter()
    people = to_records_table(generate_people(total, seed=2024)).slice(start, stop - start)
    eng = ClickHouseEngine(f"chdb://{path}", "bench")
    migrate(eng)
    for i in range(0, people.num_rows, 200_000):
        eng.insert_arrow("bench.records", people.slice(i, 200_000))
    eng.close()
    print(f"generated+loaded records [{start}, {stop}) in {time.perf_counter() - t:.1f}s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
