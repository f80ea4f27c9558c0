"""Entity-resolution speed: N generated people records (default 1M) end to end on chDB.

    uv run python bench/entity_speed.py [--records 1000000] [--keep DIR]

Phase 1 (not timed) generates records with realistic typo variants and loads them into
`records` of a fresh chDB directory. Phase 2 runs in a fresh subprocess so its peak RSS is
the resolution's own: read records from ClickHouse -> prepare -> Splink (DuckDB) predict ->
cluster -> write entities / entity_features / golden_records, with the shipped model. It
prints wall time, peak RSS, per-stage timings, pairwise precision/recall against the
generator's truth and the machine load. Phase 3 (optional, --incremental N) adds N more
records and times an incremental run. Phase 4 (optional, --queries N) adds N more records and
runs one more incremental entity run the way it runs next to the API: the embedded engine is
owned by another process (`python -m creditlake.clickhouse.sharing serve`, as `creditlake
serve` does), the entity run is its client, and a second client fires the API's
`"resolve": "entity"` queries (compiled by the API's own compiler: a filtered page plus its
count) back to back for the whole run; it prints how many were answered during the run and
their latency next to the same queries on the idle engine. Phase 5 (optional, --cli N) is
what a user runs: N more people written as a CSV file and `creditlake ingest FILE` on this
chDB directory (read, validate, dedup, load, then the incremental entity run in Dagster), timed
as a process (wall and CPU seconds), next to the entity run's own seconds inside it (from
entity_runs: the engine-alone part of the same work).

"startup_seconds" is a phase's subprocess start (interpreter, imports) before its timed run;
"cpu_seconds" covers the whole subprocess up to the end of the run. The chDB directory is
removed at the end unless --keep names it.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _startup() -> float:
    """Seconds since the parent launched this phase (interpreter start and imports)."""
    return round(time.time() - float(os.environ.get("ENTITY_SPEED_LAUNCHED", time.time())), 2)


def resolve_phase(path: str, mode: str, memory_limit: str) -> None:
    logging.disable(logging.WARNING)
    from creditlake.clickhouse import ClickHouseEngine
    from creditlake.entity.run import run_entities

    startup = _startup()
    t = time.perf_counter()
    eng = ClickHouseEngine(f"chdb://{path}", "bench")
    # The platform's entity run: the re-estimation decision included (these records fill the
    # features like the shipped model's training data, so it keeps the model).
    run = run_entities(eng, Path(path) / "home", mode=mode, memory_limit=memory_limit)
    res = run.result
    wall = time.perf_counter() - t
    usage = resource.getrusage(resource.RUSAGE_SELF)
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
    peak_mb = usage.ru_maxrss / 1024
    out = {
        "mode": res.mode, "estimation": run.estimation.status, "records_in": res.records_in,
        "wall_seconds": round(wall, 1), "startup_seconds": startup,
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


# The API's `"resolve": "entity"` queries: a filtered, sorted page and an entity-id lookup.
ENTITY_QUERIES = (
    {"resolve": "entity", "filters": {"cluster_size": {"gte": 2}}, "limit": 100,
     "sort": {"field": "name", "order": "asc"}},
    {"resolve": "entity", "filters": {"entity_id": "{entity_id}"}, "limit": 10},
)


def _compiled_queries(engine) -> list:  # noqa: ANN001 - an Engine
    import msgspec

    from creditlake.entity.query import compile_golden_query
    from creditlake.query.model import QueryRequest

    known = engine.query_rows("SELECT entity_id FROM bench.golden_records FINAL"
                              " WHERE is_deleted = 0 AND cluster_size > 1 LIMIT 1")[0][0]
    out = []
    for body in ENTITY_QUERIES:
        body = json.loads(json.dumps(body).replace("{entity_id}", known))
        req = msgspec.convert({k: v for k, v in body.items() if k != "resolve"}, QueryRequest)
        out.append(compile_golden_query(req, "bench"))
    return out


def _answer(engine, q) -> int:  # noqa: ANN001
    """One API answer: the page and its total, as the query service runs them."""
    rows = engine.query_rows(q.sql, q.params)
    engine.query_rows(q.count_sql, q.count_params)
    return len(rows)


def _percentiles(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {}
    ms = sorted(ms)
    return {"p50_ms": round(ms[len(ms) // 2], 1), "p99_ms": round(ms[int(len(ms) * 0.99)], 1),
            "max_ms": round(ms[-1], 1)}


def queries_phase(path: str, memory_limit: str) -> None:
    """An incremental entity run as a client of an engine owner, queried meanwhile."""
    logging.disable(logging.WARNING)
    env = {**os.environ, "CREDITLAKE_HOME": str(Path(path) / "home"),
           "CREDITLAKE_CLICKHOUSE_URL": f"chdb://{path}",
           "CREDITLAKE_CLICKHOUSE_DATABASE": "bench"}
    os.environ.update(env)
    owner = subprocess.Popen([sys.executable, "-m", "creditlake.clickhouse.sharing", "serve",
                              "--role", "api"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        print(f"engine owner: {owner.stdout.readline().strip()}", file=sys.stderr)
        from creditlake.clickhouse.sharing import connect
        from creditlake.config import load_settings
        from creditlake.entity.run import run_entities

        settings = load_settings()
        api = connect(settings, role="api", mode="client")
        queries = _compiled_queries(api)
        idle = []
        for i in range(40):
            t = time.perf_counter()
            _answer(api, queries[i % len(queries)])
            idle.append((time.perf_counter() - t) * 1000)
        during: list[float] = []
        errors: list[str] = []
        done = threading.Event()

        def fire() -> None:
            i = 0
            while not done.is_set():
                t = time.perf_counter()
                try:
                    _answer(api, queries[i % len(queries)])
                    during.append((time.perf_counter() - t) * 1000)
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                i += 1

        runner = connect(settings, role="dagster", mode="client")
        thread = threading.Thread(target=fire, daemon=True)
        t = time.perf_counter()
        thread.start()
        run = run_entities(runner, Path(path) / "home", mode="incremental",
                           memory_limit=memory_limit)
        wall = time.perf_counter() - t
        done.set()
        thread.join()
        runner.close()
        api.close()
        print(json.dumps({
            "mode": "incremental next to queries", "records_in": run.result.records_in,
            "wall_seconds": round(wall, 1), "timings": run.result.timings,
            "queries_answered_during_run": len(during), "query_errors": len(errors),
            "first_errors": errors[:3], "queries_per_second": round(len(during) / wall, 1),
            "during_run": _percentiles(during), "idle": _percentiles(idle),
            "load_avg": os.getloadavg(),
        }))
    finally:
        owner.terminate()
        owner.wait(60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--incremental", type=int, default=0,
                    help="then add this many records and time an incremental run")
    ap.add_argument("--queries", type=int, default=0,
                    help="then add this many records and time an incremental run next to "
                         "the API's resolve=entity queries (engine shared as with the API)")
    ap.add_argument("--cli", type=int, default=0,
                    help="then write this many more people as a CSV file and time "
                         "`creditlake ingest FILE` (ingestion + incremental entity run)")
    ap.add_argument("--memory-limit", default="2GB", help="DuckDB memory limit")
    ap.add_argument("--keep", help="chDB directory to use/keep (default: temporary)")
    ap.add_argument("--resolve-only", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="full", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.resolve_only:
        if args.mode == "queries":
            queries_phase(args.resolve_only, args.memory_limit)
        else:
            resolve_phase(args.resolve_only, args.mode, args.memory_limit)
        return
    path = args.keep or tempfile.mkdtemp(prefix="entity_speed_")
    try:
        _phases(args, path)
    finally:
        if not args.keep:  # the directory and the engine owner's files next to it
            shutil.rmtree(path, ignore_errors=True)
            for suffix in (".owner.lock", ".owner.json"):
                Path(path + suffix).unlink(missing_ok=True)


def _phases(args: argparse.Namespace, path: str) -> None:
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    total = args.records + args.incremental + args.queries + args.cli
    # Generate once with the final size, load the first `records` now, the rest later:
    # the incremental batch then holds duplicates of people already resolved.
    _load_slice(path, total, 0, args.records)
    cmd = [sys.executable, __file__, "--resolve-only", path, "--memory-limit",
           args.memory_limit]
    _timed(cmd + ["--mode", "full"])
    done = args.records
    if args.incremental:
        _load_slice(path, total, done, done + args.incremental)
        done += args.incremental
        _timed(cmd + ["--mode", "incremental"])
    if args.queries:
        _load_slice(path, total, done, done + args.queries)
        done += args.queries
        _timed(cmd + ["--mode", "queries"])
    if args.cli:
        cli_phase(path, total, done, total)
    print(f"load average after: {os.getloadavg()}; chDB dir {path}", file=sys.stderr)


def _timed(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, env={**os.environ, "ENTITY_SPEED_LAUNCHED": str(time.time())})


CSV_COLUMNS = ("email", "name", "phone", "address", "city", "country", "created_date",
               "user_id")


def cli_phase(path: str, total: int, start: int, stop: int) -> None:
    """`creditlake ingest FILE` of people [start, stop) on this chDB directory, timed."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    people = _people(total).slice(start, stop - start)
    meta = [json.loads(m) for m in people["metadata"].to_pylist()]
    table = people.select(list(CSV_COLUMNS)).append_column(
        "dob", pa.array([m["dob"] for m in meta])).append_column(
        "postcode", pa.array([m["postcode"] for m in meta]))
    table = table.set_column(table.schema.get_field_index("created_date"), "created_date",
                             pc.strftime(table["created_date"], "%Y-%m-%d"))
    csv = Path(path) / "landing" / "people_more.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    pcsv.write_csv(table, csv)
    env = {**os.environ, "CREDITLAKE_HOME": str(Path(path) / "home"),
           "CREDITLAKE_CLICKHOUSE_URL": f"chdb://{path}",
           "CREDITLAKE_CLICKHOUSE_DATABASE": "bench"}
    cmd = [sys.executable, "-c", "from cli import main; main()", "ingest", "--json", str(csv)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    from creditlake.clickhouse import ClickHouseEngine

    eng = ClickHouseEngine(f"chdb://{path}", "bench")
    run = eng.query_rows("SELECT mode, records_in, seconds, summary FROM bench.entity_runs"
                         " ORDER BY resolved_at DESC LIMIT 1")[0]
    eng.close()
    print(json.dumps({
        "mode": "creditlake ingest FILE (CSV, then the incremental entity run)",
        "command": " ".join(["creditlake", *cmd[3:]]), "exit_code": proc.returncode,
        "rows": table.num_rows, "ingest": _ingest_counts(proc.stdout),
        "process_wall_seconds": round(wall, 1),
        "process_cpu_seconds": round(after.ru_utime + after.ru_stime
                                     - before.ru_utime - before.ru_stime, 1),
        "entity_run": {"mode": run[0], "records_in": run[1], "seconds": run[2],
                       "timings": json.loads(run[3]).get("timings")},
        "load_avg": os.getloadavg(),
    }), flush=True)


def _ingest_counts(out: str) -> dict:
    try:
        doc = json.loads(out)
    except ValueError:
        return {"unparsed": out[-300:]}
    return doc.get("totals") or {k: doc[k] for k in doc if k != "files"}


@functools.lru_cache(maxsize=1)
def _people(total: int):  # noqa: ANN202 - pyarrow.Table
    from creditlake.entity.synthetic import generate_people, to_records_table

    return to_records_table(generate_people(total, seed=2024))


def _load_slice(path: str, total: int, start: int, stop: int) -> None:
    from creditlake.clickhouse import ClickHouseEngine
    from creditlake.clickhouse.ddl import migrate
    t = time.perf_counter()
    people = _people(total).slice(start, stop - start)
    eng = ClickHouseEngine(f"chdb://{path}", "bench")
    migrate(eng)
    for i in range(0, people.num_rows, 200_000):
        eng.insert_arrow("bench.records", people.slice(i, 200_000))
    eng.close()
    print(f"generated+loaded records [{start}, {stop}) in {time.perf_counter() - t:.1f}s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
