"""kill -9 of `creditlake ingest` at each stage, then a re-run on the same home: the re-run
does not hang on the dead run's concurrency slot, finishes within 1.5x a normal run (plus a
start-up allowance: this machine is shared) and reports exactly the counts of a clean run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from creditlake import samples

pytestmark = pytest.mark.integration
ROWS = 200_000
COUNTS = ("rows_read", "loaded", "duplicates", "rejected")


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("kill") / "people.csv"
    samples.write(samples.people(ROWS, seed=3), path, "csv")
    return path


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDITLAKE_", "DAGSTER_"))}
    return {**env, "CREDITLAKE_HOME": str(home), "CREDITLAKE_MAX_FAILURE_RATE": "1"}


def _cmd(path: Path) -> list[str]:
    return [sys.executable, "-c", "import cli; cli.main()", "ingest", str(path), "--json",
            "--no-resolve"]


def ingest(home: Path, path: Path, timeout: float) -> tuple[dict, float]:
    t0 = time.perf_counter()
    p = subprocess.run(_cmd(path), env=_env(home), capture_output=True, text=True,
                       timeout=timeout)
    elapsed = time.perf_counter() - t0
    assert p.returncode == 0, p.stderr[-3000:]
    (f,) = json.loads(p.stdout)["files"]
    return f, elapsed


def _manifest(home: Path) -> dict | None:
    for m in (home / "staging").glob("*/manifest.json"):
        try:
            return json.loads(m.read_text())
        except (OSError, ValueError):
            return None
    return None


def _landing_started(home: Path) -> bool:
    return any(p.stat().st_size > 0 for p in (home / "staging").glob("*/landed.arrow")) \
        and _manifest(home) is None


STAGES = {  # how the test sees, from outside, that the run is inside a stage
    "land": _landing_started,
    "normalize": lambda h: (_manifest(h) or {}).get("status") == "landed",
    "load": lambda h: (_manifest(h) or {}).get("status") == "normalized",
}


@pytest.fixture(scope="module")
def normal_run(tmp_path_factory, big_csv) -> tuple[dict, float]:
    return ingest(tmp_path_factory.mktemp("normal"), big_csv, timeout=600)


@pytest.mark.parametrize("stage", list(STAGES))
def test_kill_at_a_stage_then_rerun_is_exact_and_bounded(tmp_path, big_csv, normal_run,
                                                         stage):
    expected, normal_s = normal_run
    home = tmp_path / "home"
    p = subprocess.Popen(_cmd(big_csv), env=_env(home), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while not STAGES[stage](home):
            assert p.poll() is None, "the run ended before reaching the stage"
            assert time.monotonic() < deadline, f"never saw stage {stage}"
            time.sleep(0.02)
        if stage == "load":
            time.sleep(0.5)  # past the blocking check, into the load step
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    rerun, rerun_s = ingest(home, big_csv, timeout=max(120, 4 * normal_s))
    assert {k: rerun[k] for k in COUNTS} == {k: expected[k] for k in COUNTS}
    assert rerun["status"] == "loaded"
    print(f"kill at {stage}: normal {normal_s:.1f} s, re-run {rerun_s:.1f} s")
    assert rerun_s <= 1.5 * normal_s + 10, (normal_s, rerun_s)
