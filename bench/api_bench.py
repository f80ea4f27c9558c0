"""API benchmark: generated rows in a fresh chDB home, the real server (uvicorn, one process on
the embedded engine), concurrent clients, p50/p95/p99 and req/s including auth, credits and
usage logging.

    uv run python bench/api_bench.py --rows 3000000 --clients 1,8 --seconds 15

Next to each level: the same query mix (the API's compiled SQL, page + total count) run
straight on chDB from one thread after the server stops (`in_engine_*`, `vs_in_engine_rate`).

Queries are the typical customer query: country + status + created_date range, sorted by
created_date desc, limit 100 / 1000, with random parameters (so chDB's and the API's caches
rarely help). Client and server share the machine: on 2 cores the client's own CPU use is
part of the measured latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COUNTRIES = ["US", "DE", "FR", "GB", "BR", "IN", "CN", "JP", "CA", "AU", "ES", "IT", "NL", "SE",
             "MX", "PL", "TR", "ZA", "NG", "AR"]
STATUSES = ["active", "inactive", "pending", "suspended", "deleted", "unknown"]
FIRST_DAY = date(2019, 1, 1)
DAYS = 5 * 365
CACHE_HIT_METRIC = 'creditlake_queries_total{outcome="cache_hit"}'


def generate(home: Path, rows: int) -> float:
    """Fill {home}/clickhouse with `rows` records (in ClickHouse SQL, no Python per row)."""
    from creditlake.clickhouse import open_engine
    from creditlake.clickhouse.ddl import migrate
    from creditlake.config import load_settings
    from creditlake.schema import RECORD_FIELDS

    settings = load_settings({"CREDITLAKE_HOME": str(home)})
    engine = open_engine(settings)
    migrate(engine)
    countries = "[" + ",".join(f"'{c}'" for c in COUNTRIES) + "]"
    statuses = "[" + ",".join(f"'{s}'" for s in STATUSES) + "]"
    t0 = time.perf_counter()
    step = 1_000_000
    for start in range(0, rows, step):
        n = min(step, rows - start)
        engine.command(f"""
            INSERT INTO {engine.database}.records ({", ".join(RECORD_FIELDS)})
            SELECT generateUUIDv4(number), 'bench.csv', lower(hex(MD5(toString(number)))),
                   now64(3), toString(number), concat('user', toString(number), '@example.com'),
                   concat('Person ', toString(number)), concat('+1', toString(2000000000 + number)),
                   concat(toString(number % 9999), ' Main St'),
                   concat('City ', toString(number % 500)),
                   {countries}[(cityHash64(number) % 20) + 1],
                   toDate('{FIRST_DAY}') + (cityHash64(number, 1) % {DAYS}),
                   {statuses}[(cityHash64(number, 2) % 6) + 1], '{{}}',
                   toFloat32((cityHash64(number, 3) % 100) / 100), []
            FROM numbers({start}, {n})""", settings={"max_insert_threads": 2})
    engine.command(f"OPTIMIZE TABLE {engine.database}.records FINAL")
    seconds = time.perf_counter() - t0
    engine.close()  # releases the chDB path for the server process
    return seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, port: int, env_extra: dict[str, str]) -> subprocess.Popen:
    env = {**os.environ, "CREDITLAKE_HOME": str(home), "CREDITLAKE_RATE_LIMIT": "100000000/60",
           **env_extra}
    # the server as users start it: `creditlake serve` owns the embedded engine (reader pool)
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("creditlake")), "serve", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit("server exited during start-up")
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not become healthy")


def random_query(rng: random.Random, limit: int) -> dict:
    start = FIRST_DAY + timedelta(days=rng.randrange(DAYS - 400))
    end = start + timedelta(days=rng.randrange(180, 400))
    return {"filters": {"country": rng.choice(COUNTRIES), "status": rng.choice(STATUSES),
                        "created_date": {"gte": start.isoformat(), "lte": end.isoformat()}},
            "sort": {"field": "created_date", "order": "desc"}, "limit": limit}


def in_engine(home: Path, limit: int, seconds: float, seed: int) -> dict:
    """The baseline: the API's own SQL for the same query mix (page + total count, compiled by
    creditlake.query) run straight on chDB from one thread, nothing else in between."""
    import msgspec

    from creditlake.clickhouse import open_engine
    from creditlake.config import load_settings
    from creditlake.query.compiler import compile_query
    from creditlake.query.execute import run_query
    from creditlake.query.model import QueryRequest

    engine = open_engine(load_settings({"CREDITLAKE_HOME": str(home)}))
    rng = random.Random(seed)
    times: list[float] = []
    try:
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop:
            req = msgspec.convert(random_query(rng, limit), QueryRequest)
            q = compile_query(req, engine.database)
            t0 = time.perf_counter()
            run_query(engine, q)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        engine.close()
    return {"limit": limit, "queries": len(times), "per_s": round(len(times) / seconds, 1),
            "p50_ms": round(statistics.median(times), 2),
            "mean_ms": round(statistics.fmean(times), 2)}


def server_cpu_s(pid: int) -> float:
    """utime + stime of the server process (contention-independent cost per request)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def histogram_means(base: str) -> dict[str, float]:
    """Mean of each creditlake_*_seconds histogram, in ms, from /metrics."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        for name in ("engine_query", "engine_wait", "ledger_charge"):
            metric = f"creditlake_{name}_seconds"
            if line.startswith(metric + "_sum"):
                sums[name] = float(line.split()[-1])
            elif line.startswith(metric + "_count"):
                counts[name] = float(line.split()[-1])
    return {k: sums[k] / counts[k] * 1000 for k in sums if counts.get(k)}


async def drive(base: str, key: str, limit: int, clients: int, seconds: float, seed: int
                ) -> dict:
    rng = random.Random(seed)
    latencies: list[float] = []
    server_ms: list[float] = []
    errors: dict[int, int] = {}
    returned = 0
    stop = time.perf_counter() + seconds

    async def client(c: httpx.AsyncClient) -> None:
        nonlocal returned
        while time.perf_counter() < stop:
            body = random_query(rng, limit)
            t0 = time.perf_counter()
            r = await c.post("/api/v1/query", json=body, headers={"X-API-Key": key})
            latencies.append((time.perf_counter() - t0) * 1000)
            if r.status_code == 200:
                meta = r.json()["metadata"]
                returned += meta["returned"]
                server_ms.append(meta["query_time_ms"])
            else:
                errors[r.status_code] = errors.get(r.status_code, 0) + 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as c:
        await asyncio.gather(*[client(c) for _ in range(clients)])
    wall = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"limit": limit, "clients": clients, "requests": len(latencies),
            "req_per_s": round(len(latencies) / wall, 1), "p50_ms": round(q[49], 2),
            "p95_ms": round(q[94], 2), "p99_ms": round(q[98], 2),
            "server_query_time_p50_ms": round(statistics.median(server_ms), 2) if server_ms
            else None, "avg_returned": round(returned / max(len(server_ms), 1), 1),
            "errors": errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=3_000_000)
    ap.add_argument("--clients", default="1,8",
                    help="comma-separated concurrency levels, each run for --seconds")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--home", type=Path, default=None, help="reuse a generated home")
    ap.add_argument("--database-url", default=None, help="ledger DB (default SQLite in home)")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="creditlake-apibench-"))
    gen_s = None
    if not (home / "clickhouse").exists():
        gen_s = generate(home, args.rows)
    env_extra = {"CREDITLAKE_DATABASE_URL": args.database_url} if args.database_url else {}

    from creditlake.config import load_settings
    from creditlake.ledger import Ledger

    ledger = Ledger(args.database_url or load_settings({"CREDITLAKE_HOME": str(home)}
                                                       ).database_url)
    user, key = ledger.create_user(f"bench{time.time_ns()}@example.com", 10**12)
    port = free_port()
    server = start_server(home, port, env_extra)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(drive(base, key.api_key, 100, 2, 3, seed=0))  # warm-up
        levels = [int(c) for c in str(args.clients).split(",")]
        results = []
        for clients in levels:
            for limit in (100, 1000):
                cpu0 = server_cpu_s(server.pid)
                before = histogram_means(base)
                r = asyncio.run(drive(base, key.api_key, limit, clients, args.seconds,
                                      seed=limit * 1000 + clients))
                r["server_cpu_ms_per_req"] = round(
                    (server_cpu_s(server.pid) - cpu0) * 1000 / max(r["requests"], 1), 2)
                after = histogram_means(base)
                r["cumulative_means_ms"] = {k: round(v, 2) for k, v in after.items()}
                del before
                results.append(r)
        metrics = httpx.get(f"{base}/metrics").text
    finally:
        server.terminate()
        server.wait(timeout=30)
    totals = ledger.ledger_totals(user.id)
    ledger.close()
    baseline = {limit: in_engine(home, limit, args.seconds, seed=limit) for limit in (100, 1000)}
    for r in results:
        b = baseline[r["limit"]]
        r["in_engine_p50_ms"] = b["p50_ms"]
        r["vs_in_engine_rate"] = round(r["req_per_s"] / b["per_s"], 2)
    report = {"rows": args.rows, "generate_seconds": round(gen_s, 1) if gen_s else None,
              "home": str(home), "results": results, "in_engine_one_thread": baseline,
              "ledger_check": {"debited": totals["debited"],
                               "usage_credits": totals["usage_credits"],
                               "consistent": totals["debited"] == totals["usage_credits"]},
              "cache_hits": next((line.split()[-1] for line in metrics.splitlines()
                                  if line.startswith(CACHE_HIT_METRIC)), "0")}
    if args.json:
        print(json.dumps(report))
        return
    print(f"rows={args.rows:,} generated in {report['generate_seconds']} s, home={home}")
    print(f"{'limit':>6} {'clients':>7} {'reqs':>6} {'req/s':>7} {'p50':>8} {'p95':>8} "
          f"{'p99':>8} {'srv p50':>8} {'cpu/req':>8} {'engine p50':>10} {'x engine':>8} errors")
    for r in results:
        print(f"{r['limit']:>6} {r['clients']:>7} {r['requests']:>6} {r['req_per_s']:>7} "
              f"{r['p50_ms']:>7}ms {r['p95_ms']:>7}ms {r['p99_ms']:>7}ms "
              f"{r['server_query_time_p50_ms']:>6}ms {r['server_cpu_ms_per_req']:>6}ms "
              f"{r['in_engine_p50_ms']:>8}ms {r['vs_in_engine_rate']:>8} {r['errors'] or '-'}")
    print("in-engine, one thread (page + count):", baseline)
    print("server means so far (ms):", results[-1]["cumulative_means_ms"])
    print("load average:", os.getloadavg())
    print(f"ledger: debited={totals['debited']} usage credits={totals['usage_credits']} "
          f"consistent={report['ledger_check']['consistent']}; cache hits={report['cache_hits']}")


if __name__ == "__main__":
    main()
