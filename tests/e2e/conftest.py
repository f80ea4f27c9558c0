"""A running `creditlake demo` (small sample, API + Dagster UI + daemon) for browser tests,
and Debian's chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli.launcher import PROJECT_ROOT

CHROMIUM = os.environ.get("CREDITLAKE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ARTIFACTS = PROJECT_ROOT / "test-artifacts"


@dataclass
class Demo:
    api: str
    ui: str
    key: str
    home: Path
    output: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        msg = f"{CHROMIUM} not found (apt-get install chromium; .ci/run does it)"
        if IN_CI:
            pytest.fail(msg + " - CI=true: a missing browser is a failure", pytrace=False)
        pytest.skip(msg)
    return CHROMIUM


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[Demo]:
    home = tmp_path_factory.mktemp("demo") / "home"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CREDITLAKE_", "DAGSTER_"))}
    env.update(CREDITLAKE_HOME=str(home), PYTHONUNBUFFERED="1", COLUMNS="200")
    port, ui_port = _free_port(), _free_port()
    cmd = [str(Path(sys.executable).parent / "creditlake"), "demo", "--rows", "1000",
           "--port", str(port), "--ui-port", str(ui_port)]
    proc = subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 480
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        out = "".join(lines)
        if "Ctrl-C stops everything" not in out:
            pytest.fail(f"creditlake demo did not come up:\n{out[-4000:]}")
        key = re.search(r"API key\s+(sk_live_\S+)", out).group(1)  # type: ignore[union-attr]
        yield Demo(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}", key, home, out)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(scope="module")  # Playwright's sync API holds an event loop: end it with
def browser(chromium_path: str) -> Iterator[object]:  # the module (asyncio.run works after)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS,
                               headless=True)
        yield b
        b.close()
