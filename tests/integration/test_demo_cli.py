"""`creditlake demo` and `creditlake dev` as a user runs them: real processes, real ports.

The full run (sample -> ingest -> entity run -> key -> API) prints four curl requests that
must work as printed (one returns people merged across files); Ctrl-C must stop everything
and release the engine; a rerun reuses the sample, the ingested files and the key. The
Dagster UI half of the demo is driven by tests/e2e.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cli.launcher import PROJECT_ROOT
from creditlake.config import load_settings

pytestmark = [pytest.mark.integration]

CREDITLAKE = str(Path(sys.executable).parent / "creditlake")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CREDITLAKE_", "DAGSTER_"))}
    env.update(CREDITLAKE_HOME=str(home), PYTHONUNBUFFERED="1", COLUMNS="200", NO_COLOR="1")
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CREDITLAKE, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=PROJECT_ROOT)


def test_help_for_demo_and_dev(tmp_path: Path) -> None:
    env = demo_env(tmp_path / "home")
    for cmd, words in (("demo", ("--rows", "--port", "--ui-port", "--no-ui", "--no-serve")),
                       ("dev", ("--port", "--ui-port", "--no-api"))):
        r = run_cli([cmd, "--help"], env)
        assert r.returncode == 0, r.stderr
        for w in words:
            assert w in r.stdout


def test_port_in_use_is_a_clear_error_before_any_work(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_cli(["demo", "--port", str(port), "--no-ui"], demo_env(home))
    assert r.returncode == 2
    assert f"port {port}" in r.stderr and "--port" in r.stderr
    assert not home.exists()  # failed fast: no sample written, nothing ingested


def test_dev_needs_an_existing_home(tmp_path: Path) -> None:
    r = run_cli(["dev"], demo_env(tmp_path / "nowhere"))
    assert r.returncode == 2
    assert "no creditlake home" in r.stderr and "creditlake demo" in r.stderr


@pytest.mark.slow
def test_demo_serves_printed_requests_stops_on_ctrl_c_and_reuses_on_rerun(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = demo_env(home)
    port = free_port()
    proc = subprocess.Popen([CREDITLAKE, "demo", "--rows", "1500", "--no-ui", "--port",
                             str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=PROJECT_ROOT,
                            start_new_session=True)
    out_lines: list[str] = []
    try:
        deadline = time.monotonic() + 400
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out_lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        out = "".join(out_lines)
        assert "Ctrl-C stops everything" in out, out + (proc.stderr.read() if proc.poll()
                                                        is not None else "")
        key = re.search(r"API key\s+(sk_live_\S+)", out).group(1)  # type: ignore[union-attr]
        curls = [line.strip() for line in out_lines if line.startswith("curl ")]
        assert len(curls) == 4
        answers = []
        for cmd in curls:  # exactly as printed, through a shell, as a user would paste them
            r = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0 and '"status":"success"' in r.stdout, (cmd, r.stdout)
            answers.append(r.stdout)
        people = json.loads(next(a for c, a in zip(curls, answers, strict=True)
                                 if '"resolve": "entity"' in c))["data"]
        assert people and all(p["cluster_size"] >= 2 for p in people)  # merged people
        query = httpx.post(f"http://127.0.0.1:{port}/api/v1/query", json={"limit": 1},
                           headers={"X-API-Key": key}, timeout=60).json()
        assert query["metadata"]["total_records"] > 1000  # the sample is loaded

        key_file = home / "demo_key"
        assert key_file.read_text().strip() == key
        assert key_file.stat().st_mode & 0o777 == 0o600
        api_pid = _owner_pid(home)
        assert api_pid is not None  # the API owns the embedded engine

        proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal does
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert not _alive(api_pid)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    from creditlake.clickhouse.sharing import owner_status

    assert owner_status(load_settings({"CREDITLAKE_HOME": str(home)}))["owner"] is None

    again = run_cli(["demo", "--no-serve", "--rows", "1500"], env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert key in again.stdout  # the same key, read back from demo_key
    assert "reusing the sample" in again.stderr
    assert "already ingested" in again.stderr


def _owner_pid(home: Path) -> int | None:
    import json

    info = home / "clickhouse.owner.json"
    return json.loads(info.read_text()).get("pid") if info.exists() else None


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
