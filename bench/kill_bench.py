"""Kill-recovery benchmark: `kill -9` of `creditlake ingest FILE --json --no-resolve` in the
middle of each stage, then the same command again on the same home; the re-run's wall time
against a normal run of the same file, and its counts against the normal run's.

    uv run python bench/kill_bench.py                    # 1M-row CSV, every stage
    uv run python bench/kill_bench.py --rows 200000 --stages load,checks

The normal run is watched from outside (stdlib only: the staging files and manifest.json the
stages write under $CREDITLAKE_HOME/staging/<key>/), which gives its stage timeline:

    land       landed.arrow there, no manifest yet
    normalize  manifest status "landed"
    load       manifest status "normalized" (staging table written; dedup + INSERT ... SELECT)
    checks     manifest status "loaded" (ingestion_log written; the asset checks run)

For each stage: a normal run (fresh home), then a run in another fresh home that, once seen
entering the stage, is left running for half the stage's duration in that normal run (so the
kill lands mid-stage) and SIGKILLed, then the re-run on that home. The re-run is timed like the
normal run (wall, CPU s, peak RSS of that child) and compared with the normal run just before
it (the machine may be shared: a paired normal run keeps the load comparable; CPU seconds are
the load-independent ratio); its --json counts and the tables (records, ingestion_log) must be
exactly the normal run's. Target: re-run <= 1.5 x a normal run, counts exact.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_bench import CREDITLAKE, ROOT, _env, data_file, machine, measure  # noqa: E402

STAGES = ("land", "normalize", "load", "checks")
COUNTS = ("rows_read", "loaded", "duplicates", "rejected", "held", "status")
TARGET = 1.5
POLL_S = 0.02


def _cmd(path: Path) -> list[str]:
    return [CREDITLAKE, "ingest", str(path), "--json", "--no-resolve"]


def _manifest(home: Path) -> dict | None:
    for m in (home / "staging").glob("*/manifest.json"):
        try:
            return json.loads(m.read_text())
        except (OSError, ValueError):  # being rewritten: look again next poll
            return None
    return None


def stage_of(home: Path) -> str | None:
    """The stage a run on `home` is in, as seen from outside (None: not started reading)."""
    m = _manifest(home)
    if m is None:
        # landed.arrow is opened as land starts (its bytes may sit in a buffer for a while)
        return "land" if any((home / "staging").glob("*/landed.arrow")) else None
    return {"landed": "normalize", "normalized": "load", "loaded": "checks"}.get(m["status"])


def _wait(pid: int) -> tuple[int, float, int] | None:
    """Non-blocking wait4: (exit code, CPU s, peak RSS MB) once the child ended."""
    done, status, ru = os.wait4(pid, os.WNOHANG)
    if done == 0:
        return None
    return (os.waitstatus_to_exitcode(status), round(ru.ru_utime + ru.ru_stime, 2),
            round(ru.ru_maxrss / 1024))


def normal_run(path: Path, home: Path) -> dict:
    """The command to completion, with the time each stage was first seen."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(_cmd(path), env=_env(home), stdout=out, stderr=err, cwd=ROOT)
        seen: dict[str, float] = {}
        while (ended := _wait(proc.pid)) is None:
            stage = stage_of(home)
            if stage is not None and stage not in seen:
                seen[stage] = round(time.perf_counter() - t0, 2)
            time.sleep(POLL_S)
        wall = round(time.perf_counter() - t0, 2)
        proc.returncode = ended[0]
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    _check(ended[0], stderr, "normal run")
    return {"wall": wall, "cpu": ended[1], "peak_mb": ended[2], "stage_start_s": seen,
            "result": _file(stdout)}


def _file(stdout: str) -> dict:
    (f,) = json.loads(stdout)["files"]
    return f


def _check(rc: int, stderr: str, what: str) -> None:
    if rc != 0:
        sys.exit(f"{what} failed (exit {rc}):\n{stderr[-3000:]}")


def stage_durations(normal: dict) -> dict[str, float]:
    """Seconds each stage lasted in the normal run (from the first sight of one stage to the
    next; the last one to the end of the command)."""
    starts = normal["stage_start_s"]
    order = [s for s in STAGES if s in starts]
    ends = [starts[s] for s in order[1:]] + [normal["wall"]]
    return {s: round(end - starts[s], 2) for s, end in zip(order, ends, strict=True)}


def kill_during(path: Path, home: Path, stage: str, after_s: float,
                deadline_s: float = 3600) -> dict:
    """Start the command, SIGKILL it `after_s` seconds after it is seen entering `stage`."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(_cmd(path), env=_env(home), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=ROOT)
    entered = None
    try:
        while True:
            if proc.poll() is not None:
                sys.exit(f"the run ended (exit {proc.returncode}) before it was killed in "
                         f"{stage}")
            now, seen = time.perf_counter(), stage_of(home)
            if now - t0 > deadline_s:
                sys.exit(f"never saw stage {stage} within {deadline_s} s")
            if entered is None and seen is not None and STAGES.index(seen) >= STAGES.index(stage):
                entered = now
            if entered is not None and now - entered >= after_s:
                break
            time.sleep(POLL_S)
        at = stage_of(home)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return {"killed_after_s": round(time.perf_counter() - t0, 2), "stage_at_kill": at}


def tables(home: Path) -> dict:
    """Rows in records and ingestion_log (FINAL) of a home, read after the command ended."""
    code = ("import json; from creditlake.clickhouse import open_engine; "
            "from creditlake.config import load_settings; e = open_engine(load_settings()); "
            "db = e.database; q = lambda s: int(e.query_rows(s)[0][0]); "
            "print(json.dumps({'records': q(f'SELECT count() FROM {db}.records'), "
            "'ingestion_log': q(f'SELECT count() FROM {db}.ingestion_log FINAL'), "
            "'distinct_hashes': q(f'SELECT uniqExact(record_hash) FROM {db}.records')}))")
    p = subprocess.run([sys.executable, "-c", code], env=_env(home), capture_output=True,
                       text=True, cwd=ROOT)
    _check(p.returncode, p.stderr, "reading the tables")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--at", type=float, default=0.5,
                    help="where in the stage to kill, as a share of its normal duration")
    args = ap.parse_args()
    stages = [s for s in args.stages.split(",") if s]
    path = data_file(args.rows, "csv")
    doc: dict = {**machine(), "rows": args.rows, "file_mb": round(path.stat().st_size / 1e6)}
    homes: list[Path] = []

    def fresh() -> Path:
        homes.append(Path(tempfile.mkdtemp(prefix="bench-kill-")))
        return homes[-1]

    try:
        doc["kills"] = []
        for stage in stages:
            home = fresh()
            normal = normal_run(path, home)
            expected = {k: normal["result"][k] for k in COUNTS}
            expected_tables = tables(home)
            durations = stage_durations(normal)
            shutil.rmtree(homes.pop(), ignore_errors=True)
            print(f"normal run: {normal['wall']} s, {normal['cpu']} CPU s, stages {durations}",
                  file=sys.stderr)
            if stage not in durations:
                sys.exit(f"stage {stage} was not seen in the normal run: {durations}")
            home = fresh()
            kill = kill_during(path, home, stage, args.at * durations[stage])
            rerun = measure(_cmd(path), _env(home))
            _check(rerun["rc"], rerun["stderr"], f"re-run after a kill in {stage}")
            counts = {k: _file(rerun["stdout"])[k] for k in COUNTS}
            got_tables = tables(home)
            row = {"stage": stage, "normal_wall": normal["wall"], "normal_cpu": normal["cpu"],
                   "normal_peak_mb": normal["peak_mb"], "normal_stage_seconds": durations,
                   **kill, "rerun_wall": rerun["wall"], "rerun_cpu": rerun["cpu"],
                   "rerun_peak_mb": rerun["peak_mb"],
                   "ratio": round(rerun["wall"] / normal["wall"], 2),
                   "cpu_ratio": round(rerun["cpu"] / normal["cpu"], 2),
                   "counts_exact": counts == expected and got_tables == expected_tables,
                   "counts": counts, "tables": got_tables}
            doc["kills"].append(row)
            print(f"kill in {stage} (at {kill['killed_after_s']} s, seen {kill['stage_at_kill']}"
                  f"): re-run {rerun['wall']} s = {row['ratio']} x normal "
                  f"({row['cpu_ratio']} x in CPU s), counts exact: {row['counts_exact']}",
                  file=sys.stderr)
            shutil.rmtree(homes.pop(), ignore_errors=True)
    finally:
        for h in homes:
            shutil.rmtree(h, ignore_errors=True)
    doc["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    doc["target_met"] = all(k["ratio"] <= TARGET and k["counts_exact"] for k in doc["kills"])
    doc["target_met_in_cpu_s"] = all(k["cpu_ratio"] <= TARGET and k["counts_exact"]
                                     for k in doc["kills"])
    print(json.dumps(doc, indent=2))
    if not all(k["counts_exact"] for k in doc["kills"]):
        sys.exit("counts differ from the normal run")


if __name__ == "__main__":
    main()
