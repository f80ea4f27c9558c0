"""Ingest benchmark: the user's command, `creditlake ingest FILE --json`, end to end (start-up,
Dagster run, read, map, clean, Pandera-validate, hash, dedup, load, checks) next to the
engine-native baseline: one chDB `INSERT INTO records SELECT <trim, lower, country map, phone
digits, dates, status map, MD5> FROM file(...)` of the same file, run in the same session.

    uv run python bench/ingest_bench.py                       # 1M and 10M rows, CSV + Parquet
    uv run python bench/ingest_bench.py --rows 1000000 --formats csv
    uv run python bench/ingest_bench.py --tiny --small-files 1000x100 --rows ''  # start-up
    uv run python bench/ingest_bench.py --rows 1000000 --files 70 --formats parquet  # 70M

Every measured thing runs in its own child process started by this (stdlib-only) parent, so
wait4() gives each child's own CPU seconds and peak RSS (a child's ru_maxrss also counts the
parent's pages at fork: the parent stays small for that reason). Each run gets a fresh home.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).parent / "out"
CREDITLAKE = str(Path(sys.executable).with_name("creditlake"))
# The command as timed: ingest only, like the baseline (--resolve adds the entity run after it)
RESOLVE = ["--no-resolve"]
PROCESSING: dict[str, str] = {}  # --processing: CREDITLAKE_PROCESSING for the timed command

# The engine-native baseline: comparable cleaning written directly in ClickHouse SQL over the
# sample's "crm" header (the same work creditlake does, without mapping inference, Pandera,
# quality scores or the dead-letter path).
BASELINE_SQL = """
INSERT INTO {db}.records (id, source_file, record_hash, ingested_at, user_id, email, name,
    phone, address, city, country, created_date, status, metadata, data_quality_score,
    validation_errors, ingest_key)
WITH
    nullIf(trimBoth(toString(`Customer ID`)), '') AS uid,
    nullIf(lowerUTF8(trimBoth(toString(`E-mail`))), '') AS mail,
    nullIf(trimBoth(concat(ifNull(toString(`First Name`), ''), ' ',
                           ifNull(toString(`Last Name`), ''))), '') AS nm,
    replaceRegexpAll(ifNull(toString(Tel), ''), '\\\\D', '') AS digits,
    nullIf(trimBoth(toString(`Address Line 1`)), '') AS addr,
    nullIf(trimBoth(toString(Town)), '') AS town,
    transform(lowerUTF8(replaceRegexpAll(ifNull(toString(Country), ''), '[^A-Za-z]', '')),
              {country_keys}, {country_values}, '') AS iso,
    nullIf(transform(iso, {cc_keys}, {cc_values}, ''), '') AS cc,
    multiIf(digits = '', NULL, startsWith(ifNull(toString(Tel), ''), '+'), concat('+', digits),
            cc IS NOT NULL, concat('+', cc, trimLeft(digits, '0')), digits) AS ph,
    parseDateTime64BestEffortOrNull(toString(`Signup Date`)) AS dt,
    transform(lowerUTF8(trimBoth(toString(`Account Status`))), {status_keys}, {status_values},
              'unknown') AS st
SELECT generateUUIDv4(), 'baseline', lower(hex(MD5(concat(ifNull(lowerUTF8(mail), ''), '|',
        ifNull(ph, ''), '|', ifNull(lowerUTF8(nm), ''), '|', iso)))), now64(3), uid, mail, nm,
    ph, addr, town, nullIf(iso, ''), toDate(dt), st, '{{}}', 1.0, [], 'baseline'
FROM file('{path}', {fmt})
WHERE mail IS NOT NULL OR ph IS NOT NULL
"""


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
                           for v in values) + "]"


# ---------------------------------------------------------------- children (heavy imports)

def child_generate(rows: int, fmt: str, path: Path, offset: int) -> None:
    from creditlake import samples

    people = samples.people(rows, seed=7 + offset // max(rows, 1), id_offset=offset)
    samples.write(samples.styled(people, "crm"), path, fmt)


def child_baseline(path: Path, fmt: str, home: Path) -> None:
    """Print the seconds of the one INSERT ... SELECT (chDB already open and migrated)."""
    from creditlake.clickhouse import open_engine
    from creditlake.clickhouse.ddl import migrate
    from creditlake.config import load_settings
    from creditlake.rules import vocab

    engine = open_engine(load_settings({"CREDITLAKE_HOME": str(home)}))
    migrate(engine)
    countries = vocab.country_table()
    codes = vocab.calling_codes()
    statuses = vocab.STATUS_SYNONYMS
    sql = BASELINE_SQL.format(
        db=engine.database, path=str(path / f"*.{fmt}" if path.is_dir() else path),
        fmt="CSVWithNames" if fmt == "csv" else "Parquet",
        country_keys=_sql_list(list(countries)), country_values=_sql_list(list(countries.values())),
        cc_keys=_sql_list(list(codes)), cc_values=_sql_list(list(codes.values())),
        status_keys=_sql_list(list(statuses)), status_values=_sql_list(list(statuses.values())))
    t0 = time.perf_counter()
    engine.command(sql)
    seconds = time.perf_counter() - t0
    loaded = int(engine.query_rows(f"SELECT count() FROM {engine.database}.records")[0][0])
    engine.close()
    print(json.dumps({"seconds": seconds, "loaded": loaded}))


# ---------------------------------------------------------------- parent (stdlib only)

def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Run cmd to completion: wall seconds, CPU seconds and peak RSS of that child (wait4),
    exit code and output."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True, cwd=ROOT)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"wall": round(wall, 2), "cpu": round(ru.ru_utime + ru.ru_stime, 2),
                "peak_mb": round(ru.ru_maxrss / 1024), "rc": proc.returncode,
                "stdout": out.read(), "stderr": err.read()}


def _self(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDITLAKE_", "DAGSTER_"))}
    env["CREDITLAKE_HOME"] = str(home)
    env.update(PROCESSING)
    return env


def _check(run: dict, what: str) -> None:
    if run["rc"] != 0:
        sys.exit(f"{what} failed (exit {run['rc']}):\n{run['stderr'][-3000:]}")


def data_file(rows: int, fmt: str) -> Path:
    path = OUT / f"people-{rows}.{fmt}"
    if not path.exists():
        run = measure(_self("--child-generate", str(rows), fmt, str(path), "0"))
        _check(run, f"generating {path.name}")
        print(f"generated {path.name} ({path.stat().st_size / 1e6:.0f} MB) in {run['wall']}s",
              file=sys.stderr)
    return path


def data_dir(files: int, rows: int, fmt: str) -> Path:
    """`files` files of `rows` distinct people each (the specification's Phase I at 70 x 1M);
    generated one file per child, so memory stays that of one file."""
    out = OUT / f"people-{files}x{rows}-{fmt}"
    for i in range(files):
        path = out / f"part-{i:04d}.{fmt}"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            _check(measure(_self("--child-generate", str(rows), fmt, str(tmp), str(i * rows))),
                   f"generating {path.name}")
            tmp.rename(path)
    return out


def bench_file(rows: int, fmt: str, files: int = 1) -> dict:
    path = data_file(rows, fmt) if files == 1 else data_dir(files, rows, fmt)
    base_home = Path(tempfile.mkdtemp(prefix="bench-native-"))
    home = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        base = measure(_self("--child-baseline", str(path), fmt, str(base_home)), _env(base_home))
        _check(base, "baseline")
        native = json.loads(base["stdout"].strip().splitlines()[-1])
        run = measure([CREDITLAKE, "ingest", str(path), "--json", "--max-failure-rate", "1",
                       *RESOLVE], _env(home))
        _check(run, "creditlake ingest")
        doc = json.loads(run["stdout"])
    finally:
        shutil.rmtree(base_home, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    t = doc["totals"]
    assert t["rows_read"] == t["loaded"] + t["duplicates"] + t["rejected"] + t.get("held", 0), \
        "reconciliation failed"
    # the same rows for both rates: every row of the file (duplicates and rejects included)
    native_rate = t["rows_read"] / native["seconds"]
    rate = t["rows_read"] / run["wall"]
    size = sum(f.stat().st_size for f in path.glob("*")) if path.is_dir() else path.stat().st_size
    stages: dict[str, float] = {}
    for f in doc["files"]:
        for stage, s in f.get("stage_seconds", {}).items():
            stages[stage] = round(stages.get(stage, 0.0) + s, 2)
    return {"format": fmt, "rows": rows * files, "files": files, "file_mb": round(size / 1e6),
            "command": {"wall_s": run["wall"], "rows_per_s": round(rate), "cpu_s": run["cpu"],
                        "stage_s": stages,  # inside the command: the rest is start-up + checks
                        "peak_rss_mb": run["peak_mb"], "loaded": t["loaded"],
                        "duplicates": t["duplicates"], "rejected": t["rejected"]},
            "native_insert_select": {"seconds": round(native["seconds"], 2),
                                     "rows_per_s": round(native_rate),
                                     "loaded": native["loaded"],
                                     "process_wall_s": base["wall"],
                                     "process_cpu_s": base["cpu"],
                                     "peak_rss_mb": base["peak_mb"]},
            "ratio_to_native": round(rate / native_rate, 3),
            # load-independent: CPU seconds of the native process vs the command's
            "cpu_ratio_to_native": round(base["cpu"] / run["cpu"], 3)}


def bench_small_files(count: int, rows: int) -> dict:
    src = OUT / f"small-{count}x{rows}"
    if not src.exists():
        tmp = src.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        _check(measure(_self("--child-small", str(count), str(rows), str(tmp))), "generating")
        tmp.rename(src)
    home = Path(tempfile.mkdtemp(prefix="bench-small-"))
    try:
        run = measure([CREDITLAKE, "ingest", str(src), "--json", "--max-failure-rate", "1",
                       *RESOLVE], _env(home))
        _check(run, "creditlake ingest DIR")
        doc = json.loads(run["stdout"])
    finally:
        shutil.rmtree(home, ignore_errors=True)
    t = doc["totals"]
    ok = all(f["rows_read"] == f["loaded"] + f["duplicates"] + f["rejected"] + f.get("held", 0)
             for f in doc["files"])
    assert ok and t["files"] == count, f"every file must be accounted for: {t}"
    return {"files": count, "rows_per_file": rows, "wall_s": run["wall"], "cpu_s": run["cpu"],
            "peak_rss_mb": run["peak_mb"], "per_file_ms": round(run["wall"] / count * 1000),
            "rows_read": t["rows_read"], "loaded": t["loaded"]}


def bench_tiny() -> dict:
    src = OUT / "tiny.csv"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text("email,name,phone,country\nann@example.com,Ann,+1 555 0100,US\n"
                   "bob@example.com,Bob,+44 20 7946 0000,UK\n")
    home = Path(tempfile.mkdtemp(prefix="bench-tiny-"))
    try:
        runs = [measure([CREDITLAKE, "ingest", str(src), "--json", *RESOLVE], _env(home))
                for _ in range(3)]  # first: fresh home (creates tables); then warm
    finally:
        shutil.rmtree(home, ignore_errors=True)
    for r in runs:
        _check(r, "creditlake ingest tiny.csv")
    return {"first_wall_s": runs[0]["wall"], "warm_wall_s": min(r["wall"] for r in runs[1:]),
            "warm_cpu_s": min(r["cpu"] for r in runs[1:]),
            "stderr_clean": all(not r["stderr"].strip() for r in runs)}


def child_small(count: int, rows: int, out: Path) -> None:
    from creditlake import samples

    out.mkdir(parents=True)
    df = samples.styled(samples.people(count * rows), "crm")
    for i in range(count):
        samples.write(df.slice(i * rows, rows), out / f"part-{i:05d}.csv", "csv")


def machine() -> dict:
    info = Path("/proc/meminfo")
    lines = info.read_text().splitlines() if info.exists() else []
    mem = next((int(line.split()[1]) // 1024 for line in lines if line.startswith("MemTotal")), 0)
    return {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {mem / 1024:.0f} GiB, "
                       f"Python {platform.python_version()}",
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="1000000,10000000",
                    help="comma-separated row counts (default 1M and 10M)")
    ap.add_argument("--formats", default="csv,parquet")
    ap.add_argument("--files", type=int, default=1,
                    help="ingest a directory of this many files of --rows rows each "
                         "(e.g. --rows 1000000 --files 70 --formats parquet: 70M rows)")
    ap.add_argument("--small-files", metavar="NxR", help="also ingest N files of R rows")
    ap.add_argument("--tiny", action="store_true", help="also time a 2-row file (start-up)")
    ap.add_argument("--resolve", action="store_true",
                    help="time `creditlake ingest` with its entity resolution run (default: off)")
    ap.add_argument("--processing", choices=("polars", "clickhouse", "spark"),
                    help="normalize backend of the timed command (CREDITLAKE_PROCESSING; "
                         "default: the command's own default)")
    ap.add_argument("--child-generate", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--child-baseline", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--child-small", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_generate:
        rows, fmt, path, offset = args.child_generate
        return child_generate(int(rows), fmt, Path(path), int(offset))
    if args.child_baseline:
        path, fmt, home = args.child_baseline
        return child_baseline(Path(path), fmt, Path(home))
    if args.child_small:
        count, rows, out = args.child_small
        return child_small(int(count), int(rows), Path(out))
    if args.resolve:
        RESOLVE.clear()
    if args.processing:
        PROCESSING["CREDITLAKE_PROCESSING"] = args.processing
    doc: dict = machine()
    doc["processing"] = args.processing or "default"
    if args.tiny:
        doc["tiny_file"] = bench_tiny()
    if args.small_files:
        n, r = (int(x) for x in args.small_files.lower().split("x"))
        doc["small_files"] = bench_small_files(n, r)
    doc["files"] = [bench_file(int(rows), fmt, args.files) for rows in args.rows.split(",") if rows
                    for fmt in args.formats.split(",") if fmt]
    doc["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
