"""Share one embedded engine (chDB) between the API, Dagster runs and CLI commands.

chDB lets one process open a data directory ("Cannot lock file …/status" for the next one), so
one process per directory is the OWNER and everyone else is its CLIENT:

- The owner holds an exclusive flock on `<chdb dir>.owner.lock` (the kernel drops it when the
  process dies, so a crash never leaves a stale lock), keeps chDB open and serves a loopback
  TCP port published with a random token in the 0600 file `<chdb dir>.owner.json`. Clients and
  owner prove knowledge of the token to each other (HMAC challenge both ways).
- Engine calls, the owner's own and its clients', run in two FIFO lanes with their own chDB
  handles: reads (query_arrow/query_rows) and writes (command, insert batches). chDB runs a
  read while a write is in progress, so a long ingest statement does not hold up queries.
  Inserts travel and run as ~8 MiB Arrow batches, one write turn each, so other writers
  (another ingest) interleave batch by batch.
- Clients (`ProxyEngine`) send SQL, parameters, settings and Arrow IPC batches and get Arrow
  IPC, rows, counts or the owner's EngineError/EngineUnavailable back. When the owner exits,
  a client's next call re-runs the election and may become the owner; a "serve" client takes
  over as soon as the lock comes free.

With a ClickHouse server URL none of this applies: `connect()` returns a plain ClickHouseEngine.

    engine = connect(settings, role="api", mode="serve")   # long-running: own and serve
    with engine_session(settings, role="cli") as engine:   # short: client if an owner exists
        engine.query_rows("SELECT 1")

Operators: `python -m creditlake.clickhouse.sharing status|serve`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from creditlake.clickhouse.base import Engine, EngineError, EngineUnavailable
from creditlake.clickhouse.client import open_engine
from creditlake.clickhouse.owner import (
    DEFAULT_BATCH_BYTES,
    EngineBusy,
    OwnerEngine,
    SharePaths,
    acquire_owner,
    read_info,
)
from creditlake.clickhouse.proxy import Mode, ProxyEngine
from creditlake.config import Settings, load_settings

__all__ = ["EngineBusy", "Mode", "OwnerEngine", "ProxyEngine", "connect", "engine_session",
           "owner_status"]

# long-running processes that should end up owning the engine and serving everyone else
SERVING_ROLES = frozenset({"api", "serve", "dev", "owner", "demo"})


API_BUSY_TIMEOUT = 30.0
BATCH_BUSY_TIMEOUT = 600.0


def default_mode(role: str) -> Mode:
    return "serve" if role in SERVING_ROLES else "use"


def connect(settings: Settings, *, role: str, mode: Mode | None = None,
            busy_timeout: float | None = None, owner_timeout: float = 30.0,
            call_timeout: float = 600.0, batch_bytes: int = DEFAULT_BATCH_BYTES) -> Engine:
    """The engine for this process: a ClickHouseEngine for a server URL; otherwise the owner
    engine if this process gets (or already has) the lock, else a ProxyEngine to the owner.

    role: who is asking ("api", "dagster", "cli", ...); shown in diagnostics and picks the
      default mode: "serve" for api/serve/dev/demo, "use" otherwise.
    mode: "serve" = own if free, else be a client that takes over when the owner exits;
      "use" = own only when nobody does (a short command prefers being a client);
      "client" = never open chDB here.
    busy_timeout: how long a call waits for its turn before EngineBusy (an EngineUnavailable:
      the API answers 503). Default 30 s for role "api", 600 s for everyone else (a Dagster
      run or CLI ingest must not fail because the engine is busy); insert batches wait at
      least 600 s whatever the role.
    owner_timeout: how long to wait for an owner to answer (start-up, hand-over).
    """
    if not settings.embedded:
        return open_engine(settings)
    mode = mode or default_mode(role)
    if busy_timeout is None:
        busy_timeout = API_BUSY_TIMEOUT if role == "api" else BATCH_BUSY_TIMEOUT
    paths = SharePaths.for_settings(settings)
    if mode != "client":
        try:
            handle = acquire_owner(settings, paths, role, busy_timeout, owner_timeout)
        except EngineUnavailable:
            handle = None  # chDB would not open here: fall back to whoever owns it
        if handle is not None:
            return handle
    return ProxyEngine(settings, role=role, mode=mode, busy_timeout=busy_timeout,
                       owner_timeout=owner_timeout, call_timeout=call_timeout,
                       batch_bytes=batch_bytes)


@contextmanager
def engine_session(settings: Settings, *, role: str, **kwargs: Any) -> Iterator[Engine]:
    """`connect()` as a context manager; ownership (if taken) is handed back on exit."""
    engine = connect(settings, role=role, **kwargs)
    try:
        yield engine
    finally:
        engine.close()


def owner_status(settings: Settings, timeout: float = 2.0) -> dict[str, Any]:
    """Who owns the embedded engine right now, verified by a handshake (never opens chDB)."""
    paths = SharePaths.for_settings(settings)
    info = read_info(paths)
    status: dict[str, Any] = {"data": str(paths.data), "lock": str(paths.lock), "owner": None}
    if info is None:
        return status
    proxy = None
    try:
        proxy = ProxyEngine(settings, role="status", mode="client", owner_timeout=timeout)
        status["owner"] = {**proxy.ping(), "port": info.get("port")}
    except EngineError as exc:
        status["stale"] = {"pid": info.get("pid"), "port": info.get("port"), "error": str(exc)}
    finally:
        if proxy is not None:
            proxy.close()
    return status


def _serve(settings: Settings, role: str) -> int:
    """Own the engine (waiting for the current owner to leave) until SIGTERM/SIGINT."""
    # a plain flag: Event.set() inside a signal handler can deadlock with Event.wait()
    stop: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stop.append(signum))
    engine = connect(settings, role=role, mode="serve")
    announced = False
    if isinstance(engine, ProxyEngine) and not engine.owns:
        print(json.dumps({"standby": os.getpid(), "client_of": engine.owner_pid, "role": role}),
              flush=True)
    try:
        while not stop:
            owns = isinstance(engine, OwnerEngine) or getattr(engine, "owns", False)
            if owns and not announced:
                info = read_info(SharePaths.for_settings(settings)) or {}
                print(json.dumps({"owner": os.getpid(), "port": info.get("port"), "role": role}),
                      flush=True)
                announced = True
            time.sleep(0.2)
    finally:
        engine.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m creditlake.clickhouse.sharing",
                                     description="Inspect or hold the shared embedded engine.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("status", help="print the current owner as JSON")
    serve = sub.add_parser("serve", help="own the engine and serve other processes")
    serve.add_argument("--role", default="serve")
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.cmd == "status":
        print(json.dumps(owner_status(settings)))
        return 0
    return _serve(settings, args.role)


if __name__ == "__main__":
    sys.exit(main())
