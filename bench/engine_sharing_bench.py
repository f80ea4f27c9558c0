"""Shared embedded engine: a 2M-row insert through one client while another client queries.

    uv run python bench/engine_sharing_bench.py [--rows 2000000] [--batch-mb 8]

Starts an owner (`python -m creditlake.clickhouse.sharing serve`) on a fresh temporary home, then
measures: query latency on an idle owner; a client inserting the rows alone (cold owner, then
warm); the same insert while this process fires primary-key queries back to back (rows/s,
p50/p99/max latency); one long INSERT … SELECT statement from a client while this process
queries; and, as a baseline, the same insert straight into chDB in one process (no sharing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

COUNTRIES = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "SE", "PL", "BR", "MX", "CA", "AU", "IN",
             "JP", "ZA", "NG", "EG", "AR", "CL"]
STATUSES = ["active", "inactive", "pending", "banned"]
DDL = ("CREATE TABLE IF NOT EXISTS bench.records (user_id String, email String, name String, "
       "phone String, address String, city String, country LowCardinality(String), "
       "status LowCardinality(String), created_date Date, record_hash String, "
       "source_file String, metadata String) ENGINE = MergeTree "
       "ORDER BY (country, status, created_date, record_hash)")

# Runs in a subprocess: builds the rows (vectorized) and inserts them through connect(), or
# straight into chDB with --direct. Prints {"rows", "seconds", "kind"}.
INSERTER = r"""
import json, sys, time
import numpy as np, pyarrow as pa, pyarrow.compute as pc
from creditlake.config import load_settings
rows, batch_mb, direct, countries, statuses, ddl = (int(sys.argv[1]), int(sys.argv[2]),
    sys.argv[3] == "direct", sys.argv[4].split(","), sys.argv[5].split(","), sys.argv[6])
rng = np.random.default_rng(7)
i = pa.array(np.arange(rows, dtype=np.int64))
si = pc.cast(i, pa.string())
def cat(*parts):
    return pc.binary_join_element_wise(*parts, "")
table = pa.table({
    "user_id": cat("u", si), "email": cat("user", si, "@example.com"),
    "name": cat("Name ", si, " Surname"), "phone": cat("+1555", si),
    "address": cat(si, " Main Street"),
    "city": cat("City ", pc.cast(pa.array(rng.integers(0, 500, rows)), pa.string())),
    "country": pa.array(np.array(countries)[rng.integers(0, len(countries), rows)]),
    "status": pa.array(np.array(statuses)[rng.integers(0, len(statuses), rows)]),
    "created_date": pa.array(rng.integers(15000, 20000, rows).astype(np.int32)).cast(pa.date32()),
    "record_hash": pc.cast(pa.array(rng.integers(0, 2**63, rows, dtype=np.int64)), pa.string()),
    "source_file": pa.array(np.full(rows, "bench.csv")),
    "metadata": pa.array(np.full(rows, '{"k": "v"}')),
})
if direct:
    from creditlake.clickhouse.client import ClickHouseEngine
    s = load_settings()
    eng = ClickHouseEngine(s.clickhouse_url, "bench")
    step = max(1, (batch_mb << 20) // max(1, table.nbytes // rows))
    eng.command(ddl)
    t0 = time.perf_counter()
    for off in range(0, rows, step):
        eng.insert_arrow("bench.records", table.slice(off, step))
else:
    from creditlake.clickhouse.sharing import connect
    eng = connect(load_settings(), role="bench-insert", batch_bytes=batch_mb << 20)
    t0 = time.perf_counter()
    eng.insert_arrow("bench.records", table)
dt = time.perf_counter() - t0
print(json.dumps({"rows": rows, "seconds": dt, "kind": type(eng).__name__,
                  "mb": table.nbytes / 1e6}))
eng.close()
"""


COPY = r"""
import json, time
from creditlake.config import load_settings
from creditlake.clickhouse.sharing import connect
eng = connect(load_settings(), role="bench-copy")
eng.command("CREATE TABLE bench.copy AS bench.records")
t0 = time.perf_counter()
eng.command("INSERT INTO bench.copy SELECT * FROM bench.records")
dt = time.perf_counter() - t0
print(json.dumps({"rows": eng.query_rows("SELECT count() FROM bench.copy")[0][0], "seconds": dt}))
eng.close()
"""


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDITLAKE_")}
    env.update(CREDITLAKE_HOME=str(home), CREDITLAKE_CLICKHOUSE_URL=f"chdb://{home / 'ch'}",
               CREDITLAKE_CLICKHOUSE_DATABASE="bench", PYTHONUNBUFFERED="1")
    return env


def _inserter(home: Path, rows: int, batch_mb: int, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", INSERTER, str(rows), str(batch_mb), mode,
                             ",".join(COUNTRIES), ",".join(STATUSES), DDL],
                            env=_env(home), stdout=subprocess.PIPE, text=True)


def _query(eng, k: int) -> float:
    """A primary-key query as the API would send it; varied so chDB's cache does not answer."""
    t0 = time.perf_counter()
    eng.query_arrow(
        "SELECT * FROM bench.records WHERE country = {c:String} AND status = {s:String} "
        "AND created_date >= {d:Date} ORDER BY created_date LIMIT 100",
        {"c": COUNTRIES[k % len(COUNTRIES)], "s": STATUSES[k % len(STATUSES)],
         "d": f"{2011 + k % 12}-{1 + k % 12:02d}-01"})
    return time.perf_counter() - t0


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] * 1e3


def _summary(lat: list[float]) -> str:
    return (f"{len(lat)} queries, p50 {_pct(lat, 0.5):.1f} ms, p99 {_pct(lat, 0.99):.1f} ms, "
            f"max {max(lat) * 1e3:.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--batch-mb", type=int, default=8)
    args = ap.parse_args()
    from creditlake.clickhouse.sharing import ProxyEngine
    from creditlake.config import load_settings

    with tempfile.TemporaryDirectory(prefix="sharing-bench-") as tmp:
        home = Path(tmp) / "home"
        owner = subprocess.Popen([sys.executable, "-m", "creditlake.clickhouse.sharing", "serve"],
                                 env=_env(home), stdout=subprocess.PIPE, text=True)
        try:
            print("owner:", owner.stdout.readline().strip())
            eng = ProxyEngine(load_settings(_env(home)), role="bench-query", mode="client")
            eng.command(DDL)
            eng.command("INSERT INTO bench.records (country, status, created_date, record_hash)"
                        " SELECT 'US', 'active', today(), toString(number) FROM numbers(1000)")
            idle = [_query(eng, k) for k in range(300)]
            print(f"idle owner:            {_summary(idle)}")

            for label in ("cold", "warm"):  # the owner's first big insert pays a warm-up
                alone = _inserter(home, args.rows, args.batch_mb, "proxy")
                res = json.loads(alone.communicate()[0])
                print(f"insert alone ({label}):   {res['rows'] / res['seconds']:,.0f} rows/s "
                      f"({res['rows']:,} rows, {res['mb']:.0f} MB, {res['seconds']:.1f} s)")

            busy = _inserter(home, args.rows, args.batch_mb, "proxy")
            lat: list[float] = []
            done = threading.Event()
            threading.Thread(target=lambda: (busy.wait(), done.set()), daemon=True).start()
            k = 0
            while not done.is_set():
                lat.append(_query(eng, k))
                k += 1
            res = json.loads(busy.stdout.read())
            print(f"insert + queries:      {res['rows'] / res['seconds']:,.0f} rows/s; "
                  f"queries during it: {_summary(lat)}")
            # one long write statement (like the load stage's INSERT … SELECT over a whole file)
            # from another client while this one queries: the read lane keeps answering
            copier = subprocess.Popen([sys.executable, "-c", COPY], env=_env(home),
                                      stdout=subprocess.PIPE, text=True)
            lat = []
            done.clear()
            threading.Thread(target=lambda: (copier.wait(), done.set()), daemon=True).start()
            k = 0
            while not done.is_set():
                lat.append(_query(eng, k))
                k += 1
            res = json.loads(copier.stdout.read())
            print(f"INSERT…SELECT {res['rows']:,} rows in one statement ({res['seconds']:.1f} s); "
                  f"queries during it: {_summary(lat)}")
            after = [_query(eng, k) for k in range(300)]
            print(f"idle owner afterwards: {_summary(after)} (same queries, "
                  f"{3 * args.rows + 1000:,} rows)")
            total = eng.query_rows("SELECT count() FROM bench.records")[0][0]
            assert total == 3 * args.rows + 1000, total
            eng.close()
        finally:
            owner.terminate()
            owner.wait(30)
        direct_home = Path(tmp) / "direct"
        res = json.loads(_inserter(direct_home, args.rows, args.batch_mb,
                                   "direct").communicate()[0])
        print(f"baseline, direct chDB: {res['rows'] / res['seconds']:,.0f} rows/s "
              f"(same batches, one process, no sharing)")


if __name__ == "__main__":
    main()
