"""Run the API, the Dagster webserver and the Dagster daemon side by side, and stop them all.

Each service runs in its own session (process group), so Ctrl-C in the terminal reaches only
the supervising command, which then stops every group in order: Dagster first (its runs are
engine clients), the API (the engine owner) last, so in-flight runs never lose their owner
halfway through a step. SIGTERM, then SIGKILL after a grace period; grandchildren (Dagster
run workers, code servers) share their parent's group and go with it. On Linux each child
also gets PR_SET_PDEATHSIG, so a SIGKILLed supervisor does not leave services running.
Output goes to $CREDITLAKE_HOME/logs/<service>.log to keep the terminal readable.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from creditlake.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = PROJECT_ROOT / "workspace.yaml"


class LaunchError(RuntimeError):
    """A service could not be started or did not become ready (message is for the user)."""


@dataclass
class Service:
    name: str
    argv: list[str]
    ready_url: str | None = None  # answers 200 once the service is usable
    proc: subprocess.Popen | None = field(default=None, repr=False)
    log_path: Path | None = None


def port_problem(host: str, port: int) -> str | None:
    """Why host:port cannot be served (in use, not ours to bind), or None when it is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return f"port {port} on {host} is not available ({exc.strerror or exc})"
    return None


def _bin(name: str) -> str:
    """A console script of this environment (next to the running interpreter)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    raise LaunchError(f"{name} not found next to {sys.executable}; run `uv sync` first")


def _die_with_parent() -> None:
    """preexec_fn: new session + SIGTERM when the supervisor dies (Linux prctl)."""
    os.setsid()
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def service_env(settings: Settings) -> dict[str, str]:
    from cli.runner import dagster_home

    env = dict(os.environ)
    env["CREDITLAKE_HOME"] = str(settings.home)  # absolute: children run in the project root
    env["DAGSTER_HOME"] = str(dagster_home(settings))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def api_service(host: str, port: int) -> Service:
    return Service("api", [_bin("creditlake"), "serve", "--host", host, "--port", str(port),
                           "--log-level", "warning"],
                   ready_url=f"http://{_connect_host(host)}:{port}/healthz")


def dagster_services(host: str, ui_port: int) -> list[Service]:
    return [
        Service("dagster-webserver", [_bin("dagster-webserver"), "-h", host, "-p", str(ui_port),
                                      "-w", str(WORKSPACE)],
                ready_url=f"http://{_connect_host(host)}:{ui_port}/server_info"),
        Service("dagster-daemon", [_bin("dagster-daemon"), "run", "-w", str(WORKSPACE)]),
    ]


def _connect_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


class Supervisor:
    """Start services, wait until they answer, keep them running, stop them all."""

    def __init__(self, settings: Settings, services: list[Service],
                 env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.env = env  # the children's environment (default: ours + the home's paths)
        self.services = services
        self.log_dir = settings.home / "logs"
        self._stop_requested: list[int] = []

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self.env if self.env is not None else service_env(self.settings)
        for svc in self.services:
            svc.log_path = self.log_dir / f"{svc.name}.log"
            with open(svc.log_path, "ab") as log:
                log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {svc.argv}\n".encode())
                log.flush()
                svc.proc = subprocess.Popen(svc.argv, cwd=PROJECT_ROOT, env=env,
                                            stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT,
                                            preexec_fn=_die_with_parent)  # noqa: PLW1509

    def wait_ready(self, timeout: float = 180.0,
                   on_ready: Callable[[Service], None] | None = None) -> None:
        """Poll every service's ready_url; a service that exits meanwhile is an error."""
        pending = [s for s in self.services if s.ready_url]
        deadline = time.monotonic() + timeout
        while pending:
            self.check_alive()
            if self._stop_requested:
                return
            for svc in list(pending):
                if _answers(svc.ready_url):  # type: ignore[arg-type]
                    pending.remove(svc)
                    if on_ready:
                        on_ready(svc)
            if time.monotonic() > deadline:
                names = ", ".join(s.name for s in pending)
                raise LaunchError(f"{names} did not answer within {timeout:.0f} s; see "
                                  f"{self.log_dir}")
            time.sleep(0.3)
        self.check_alive()

    def check_alive(self) -> None:
        for svc in self.services:
            if svc.proc is not None and svc.proc.poll() is not None:
                raise LaunchError(f"{svc.name} exited with code {svc.proc.returncode}:\n"
                                  + tail(svc.log_path))

    def install_signal_handlers(self) -> None:
        # a plain list append: safe inside a signal handler
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda signum, _f: self._stop_requested.append(signum))

    @property
    def stop_requested(self) -> bool:
        return bool(self._stop_requested)

    def run_until_stopped(self) -> None:
        """Block until Ctrl-C/SIGTERM, or raise LaunchError when a service dies."""
        while not self._stop_requested:
            self.check_alive()
            time.sleep(0.5)

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM each group (Dagster first, API last), then SIGKILL what is left."""
        for svc in reversed(self.services):
            self._stop_one(svc, grace)

    def _stop_one(self, svc: Service, grace: float) -> None:
        proc = svc.proc
        if proc is None:
            return
        pgid = proc.pid  # leader of its own session/group
        _signal_group(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGKILL)
            proc.wait(timeout=10)
        # the leader is gone; give stragglers in its group a moment, then kill them
        deadline = time.monotonic() + 5
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our loopback URL
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def tail(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").splitlines()
    return "\n".join("    " + line for line in text[-lines:])
