"""The owner side of the shared embedded engine (see clickhouse/sharing.py for the design).

The owner holds an exclusive `flock` on `<chdb dir>.owner.lock`, keeps chDB open, and serves
other local processes on a loopback port written (with a random token) to the 0600 file
`<chdb dir>.owner.json`.

Calls run in two lanes, each a FIFO gate over its own chDB connection handle: reads
(query_arrow, query_rows) and writes (command, insert batches). chDB runs a query on one handle
while another handle is busy (measured: ~270 queries answered, p50 44 ms, during a 33 s
INSERT … SELECT on a loaded 2-core box), so a long ingest command never blocks the API's queries,
and FIFO order means a call waits only for the calls queued before it in its own lane.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import itertools
import json
import os
import queue
import secrets
import select
import shutil
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import pyarrow as pa

from creditlake.clickhouse import wire
from creditlake.clickhouse.base import EngineError, EngineUnavailable
from creditlake.clickhouse.client import ClickHouseEngine, quote_literal
from creditlake.config import Settings

T = TypeVar("T")
Lane = Literal["read", "write"]

# One insert turn at the owner's write gate, and one client message: each is one part of the
# target table. At 8 MB a normalize batch of 200K rows was 9 parts and a 10M-row file's stage
# table 458, which every load chunk read whole (with the stage's finer granules too, see
# manifest.STAGE_SETTINGS). 10M-row CSV, one run each: 8 MB, load 21.4 s, peak 1.66 GB anon;
# 24 MB (3 parts a batch) with those granules, 18.3 s, 1.50 GB; 64 MB (whole batches),
# 14.7 s but 1.83 GB, which took the command past 2 GB. Reads have their own lane, so only
# other writers wait for a turn.
DEFAULT_BATCH_BYTES = 24 << 20
MAX_BATCH_ROWS = 1_000_000
READ_HANDLES = 3  # reads at once: on 2 cores 1-4 threads reach 100-130 page queries/s together
HANDSHAKE_TIMEOUT = 5.0
IDLE_POLL = 0.2  # how soon idle connection threads notice a shutdown


class EngineBusy(EngineUnavailable):
    """The owner is alive but did not give this call a turn in time: retry later (503), and
    keep the engine object (closing it would hand ownership away)."""


class OwnerLeaving(EngineUnavailable):
    """The owner is shutting down and did NOT run the call: safe to retry with the next owner."""


RETRY = "Retry"  # wire error kind for OwnerLeaving


@dataclass(frozen=True)
class SharePaths:
    """Coordination files of one chDB data directory (keyed by the data dir, not the home)."""

    data: Path
    lock: Path
    info: Path
    spool: Path  # the owner's insert files (ArrowInserter)

    @classmethod
    def for_settings(cls, settings: Settings) -> SharePaths:
        if settings.chdb_path is None:
            raise ValueError("engine sharing applies to the embedded (chdb://) engine only")
        data = Path(os.path.realpath(settings.chdb_path))  # chDB compares paths literally too
        return cls(data=data, lock=data.with_name(data.name + ".owner.lock"),
                   info=data.with_name(data.name + ".owner.json"),
                   spool=data.with_name(data.name + ".spool"))


def read_info(paths: SharePaths) -> dict[str, Any] | None:
    """The owner's address and token, or None when absent, unreadable or not trustworthy."""
    try:
        fd = os.open(paths.info, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        # a file another user could write would let them collect our SQL: ignore it
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            info = json.loads(fh.read(1 << 16))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    ok = isinstance(info, dict) and isinstance(info.get("port"), int) and info.get("token")
    return info if ok else None


def _write_info(paths: SharePaths, info: Mapping[str, Any]) -> None:
    tmp = paths.info.with_name(f"{paths.info.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(dict(info), fh)
    os.replace(tmp, paths.info)


def iter_slices(data: pa.Table, batch_bytes: int) -> Iterator[pa.Table]:
    """Zero-copy slices of about batch_bytes each: the unit of one gate turn / one message."""
    n = data.num_rows
    if n == 0:
        return
    per_row = max(1, data.nbytes // n)
    step = max(1, min(MAX_BATCH_ROWS, batch_bytes // per_row))
    for off in range(0, n, step):
        yield data.slice(off, step)


class FairGate:
    """A FIFO lock (or, with slots > 1, semaphore) with a timeout: threading.Lock is unfair,
    a looping inserter could starve everyone else."""

    def __init__(self, slots: int = 1) -> None:
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()
        self._slots = slots
        self._running = 0

    def acquire(self, timeout: float) -> bool:
        me = object()
        deadline = time.monotonic() + timeout
        with self._cond:
            self._queue.append(me)
            while self._running >= self._slots or self._queue[0] is not me:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._queue.remove(me)
                    self._cond.notify_all()
                    return False
                self._cond.wait(left)
            self._queue.popleft()
            self._running += 1
            self._cond.notify_all()  # the next in line may take a free slot too
            return True

    def release(self) -> None:
        with self._cond:
            self._running -= 1
            self._cond.notify_all()

    @property
    def waiting(self) -> int:
        return len(self._queue)

    @property
    def busy(self) -> bool:
        return self._running > 0

    @property
    def running(self) -> int:
        return self._running


class ArrowInserter:
    """Insert batches through a spool file: each is written as an Arrow IPC stream and read by
    chDB's file() in one INSERT ... SELECT. As fast as chDB's Python() table function used
    before (1M stage rows: 1.7-2.0 s either way) without its pandas import (~0.35 s) or a
    second handle; 100 rows: 8 ms, as clickhouse-connect's insert_arrow.
    Columns are matched by name, as insert_arrow does; with settings, or when file() rejects
    a batch (a type its Arrow reader lacks), the batch takes insert_arrow."""

    def __init__(self, engine: ClickHouseEngine, spool: Path) -> None:
        self._engine = engine
        self._spool = spool
        # the owner's alone (it holds the data directory's lock): a killed owner's leftovers go
        shutil.rmtree(spool, ignore_errors=True)
        spool.mkdir(parents=True)
        self._ids = itertools.count()
        self.fallbacks = 0

    def insert(self, table: str, data: pa.Table, settings: Mapping[str, Any] | None) -> int:
        if settings:
            return self._engine.insert_arrow(table, data, settings)
        names = ", ".join(_quote_ident(c) for c in data.column_names)
        path = self._spool / f"{next(self._ids)}.arrows"
        try:
            with pa.OSFile(str(path), "wb") as f, pa.ipc.new_stream(f, data.schema) as w:
                w.write_table(data)
            self._engine.command(f"INSERT INTO {table} ({names}) SELECT {names} "
                                 f"FROM file({quote_literal(str(path))}, 'ArrowStream')")
        except EngineError:
            self.fallbacks += 1
            return self._engine.insert_arrow(table, data, settings)
        finally:
            path.unlink(missing_ok=True)
        return data.num_rows

    def close(self) -> None:
        shutil.rmtree(self._spool, ignore_errors=True)


def _quote_ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class EngineOwner:
    """Holds the lock and chDB for one data directory and serves other processes."""

    def __init__(self, paths: SharePaths, role: str, lock_fd: int, engine: ClickHouseEngine,
                 batch_bytes: int = DEFAULT_BATCH_BYTES) -> None:
        self.paths = paths
        self.role = role
        self.engine = engine  # the write lane's handle (commands; insert fallback)
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        # same engine, more handles: the path is already open in this process, so these are
        # quick. Reads run on a small pool of handles at once (chDB answers several threads on
        # one path; one query already uses both cores, so a few handles are enough), writes
        # keep their own single lane.
        # Reader handles open on first need (a short CLI run that reads little opens one).
        self._readers: list[ClickHouseEngine] = []
        self._readers_lock = threading.Lock()
        self._free_readers: queue.SimpleQueue[ClickHouseEngine] = queue.SimpleQueue()
        try:
            self.inserter = ArrowInserter(engine, paths.spool)
        except BaseException:
            self._listener.close()
            raise
        self.batch_bytes = batch_bytes
        self.token = secrets.token_urlsafe(32)
        self.gates: dict[str, FairGate] = {"read": FairGate(READ_HANDLES), "write": FairGate()}
        self.refs = 0
        self.closed = False
        self._lock_fd = lock_fd
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._listener.settimeout(0.5)  # lets the accept loop notice shutdown
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name="creditlake-engine-owner",
                                          daemon=True)

    # -- life cycle ---------------------------------------------------------------------------

    @classmethod
    def try_start(cls, settings: Settings, paths: SharePaths, role: str,
                  open_timeout: float) -> EngineOwner | None:
        """Become the owner if nobody is; None when another process holds the lock."""
        paths.data.mkdir(parents=True, exist_ok=True)
        fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        engine = None
        try:
            engine = _open_chdb(settings, paths, open_timeout)
            owner = cls(paths, role, fd, engine)
        except BaseException:
            if engine is not None:
                engine.close()
            os.close(fd)  # releases the flock (after chDB's own lock, see shutdown)
            raise
        owner._acceptor.start()
        _write_info(paths, {"pid": os.getpid(), "port": owner.port, "token": owner.token,
                            "role": role, "data": str(paths.data), "started": time.time()})
        return owner

    def shutdown(self, drain_timeout: float = 30.0) -> None:
        """Stop serving, finish in-flight calls, close chDB, then release the lock (in that
        order: the next owner must find chDB's own lock free when it gets ours)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        # connection threads notice `closed` within IDLE_POLL: a call in progress still gets its
        # answer, anything later gets a "not run, retry" answer (see _serve_conn)
        deadline = time.monotonic() + drain_timeout
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))
        held = [g for g in self.gates.values()
                if g.acquire(max(0.0, deadline - time.monotonic()))]
        try:
            # every handle must close: any open one keeps chDB's directory lock alive
            self.inserter.close()
            with self._readers_lock:
                readers = list(self._readers)
            for reader in readers:
                with contextlib.suppress(Exception):
                    reader.close()
            self.engine.close()
        finally:
            for g in held:
                g.release()
            info = read_info(self.paths)
            if info and info.get("pid") == os.getpid() and info.get("port") == self.port:
                with contextlib.suppress(OSError):
                    self.paths.info.unlink()
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)

    def _forget_after_fork(self) -> None:
        """In a forked child: drop inherited descriptors so the child never keeps the lock or
        the port alive after the real owner exits (closing them here leaves the parent's open)."""
        self.closed = True
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)
        with contextlib.suppress(OSError):
            self._listener.close()
        for c in list(self._conns):
            with contextlib.suppress(OSError):
                c.close()

    # -- engine calls ---------------------------------------------------------------------------

    def run(self, lane: Lane, fn: Callable[[], T], wait: float, *,
            continuing: bool = False) -> T:
        """Run fn at its turn in its lane. `continuing`: later parts of a call that already
        wrote something, which must finish even during shutdown ("not run" would be a lie)."""
        if self.closed and not continuing:
            raise OwnerLeaving("the engine owner is shutting down; call not run")
        gate = self.gates[lane]
        if not gate.acquire(wait):
            raise EngineBusy(
                f"embedded engine busy: no {lane} turn within {wait:.1f}s (another {lane} "
                f"is running, {gate.waiting} queued; owner {self.role} pid {os.getpid()})")
        try:
            return fn()
        finally:
            gate.release()

    def _reader(self) -> ClickHouseEngine:
        """A free reader handle, or a new one (never more than the read gate's slots)."""
        try:
            return self._free_readers.get_nowait()
        except queue.Empty:
            with self._readers_lock:
                reader = ClickHouseEngine(f"chdb://{self.paths.data}", self.engine.database,
                                          self.engine.cluster)
                self._readers.append(reader)
            return reader

    def read(self, call: Callable[[ClickHouseEngine], T], wait: float) -> T:
        """call(handle) at its turn in the read lane, on a reader handle of its own."""
        def borrowed() -> T:
            handle = self._reader()  # the gate admits at most READ_HANDLES callers
            try:
                return call(handle)
            finally:
                self._free_readers.put(handle)

        return self.run("read", borrowed, wait)

    def insert(self, table: str, data: pa.Table, settings: Mapping[str, Any] | None,
               wait: float) -> int:
        written, started = 0, False
        for part in iter_slices(data, self.batch_bytes):
            written += self.run("write", lambda p=part: self.inserter.insert(table, p, settings),
                                wait, continuing=started)
            started = True
        return written

    def status(self) -> dict[str, Any]:
        r, w = self.gates["read"], self.gates["write"]
        return {"pid": os.getpid(), "role": self.role, "busy": r.busy or w.busy,
                "reading": r.busy, "reads_running": r.running, "writing": w.busy,
                "queued": r.waiting + w.waiting,
                "clients": len(self._conns)}

    # -- serving ----------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self.closed:
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve_conn, args=(sock,), daemon=True,
                                 name="creditlake-engine-conn")
            self._threads.add(t)
            t.start()

    def _serve_conn(self, sock: socket.socket) -> None:
        with self._conns_lock:
            self._conns.add(sock)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(HANDSHAKE_TIMEOUT)
            if not self._handshake(sock):
                return
            sock.settimeout(None)
            poller = select.poll()  # not select(): it fails on descriptors above 1023
            poller.register(sock, select.POLLIN)
            while self._wait_request(poller):
                try:
                    header, body = wire.recv_msg(sock)
                except EOFError:
                    return
                if self.closed:
                    break  # arrived during shutdown: answer "not run" below
                resp, rbody = self._dispatch(header, body)
                wire.send_msg(sock, resp, rbody)
            self._goodbye(sock)
        except (OSError, EOFError, wire.ProtocolError, ValueError):
            return  # client went away or spoke garbage: drop the connection only
        finally:
            with self._conns_lock:
                self._conns.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()
            self._threads.discard(threading.current_thread())

    def _wait_request(self, poller: select.poll) -> bool:
        """Wait for the next request; False once the owner is closing and none is pending."""
        while True:
            if poller.poll(IDLE_POLL * 1000):
                return True
            if self.closed:
                return False

    def _goodbye(self, sock: socket.socket) -> None:
        """Tell the client its next request was not run (it retries with the next owner), then
        read until it hangs up: closing with unread data would send a RST that can wipe the
        goodbye from the client's receive buffer and leave it unsure what ran."""
        wire.send_msg(sock, {"ok": False, "error": RETRY,
                             "message": "the engine owner is shutting down; call not run"})
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(0.5)  # a request racing the goodbye arrives within this
        with contextlib.suppress(OSError):
            while sock.recv(1 << 16):
                pass

    def _handshake(self, sock: socket.socket) -> bool:
        hello, _ = wire.recv_msg(sock, **wire.HANDSHAKE_LIMITS)
        cnonce = hello.get("nonce")
        if hello.get("op") != "hello" or not isinstance(cnonce, bytes):
            return False
        snonce = secrets.token_bytes(16)
        wire.send_msg(sock, {"ok": True, "nonce": snonce, "mac": wire.mac(self.token, b"S", cnonce),
                             "pid": os.getpid(), "role": self.role})
        auth, _ = wire.recv_msg(sock, **wire.HANDSHAKE_LIMITS)
        if not wire.mac_ok(wire.mac(self.token, b"C", snonce), auth.get("mac")):
            wire.send_msg(sock, {"ok": False, "error": "EngineUnavailable",
                                 "message": "engine owner: authentication failed"})
            return False
        wire.send_msg(sock, {"ok": True})
        return True

    def _dispatch(self, h: dict[str, Any], body: bytearray | None
                  ) -> tuple[dict[str, Any], Any]:
        op = h.get("op")
        sql, params, stg = h.get("sql"), h.get("parameters"), h.get("settings")
        wait = float(h.get("wait", 30.0))
        eng = self.engine
        try:
            if op == "command":
                n = self.run("write", lambda: eng.command(sql, params, stg), wait)
                return {"ok": True, "written": n}, None
            if op == "query_arrow":
                tbl = self.read(lambda r: r.query_arrow(sql, params, stg), wait)
                return {"ok": True}, wire.arrow_to_ipc(tbl)  # serialized outside the gate
            if op == "query_rows":
                rows = self.read(lambda r: r.query_rows(sql, params, stg), wait)
                return {"ok": True}, wire.pack_rows(rows)
            if op == "insert":
                data = wire.ipc_to_arrow(body) if body else pa.table({})
                return {"ok": True, "written": self.insert(h["table"], data, stg, wait)}, None
            if op == "ping":
                return {"ok": True, **self.status()}, None
            return _error(EngineError(f"unknown operation {op!r}")), None
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
            return _error(exc), None


def _error(exc: BaseException) -> dict[str, Any]:
    kind = (RETRY if isinstance(exc, OwnerLeaving) else
            "EngineBusy" if isinstance(exc, EngineBusy) else
            "EngineUnavailable" if isinstance(exc, EngineUnavailable) else "EngineError")
    msg = str(exc) if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
    return {"ok": False, "error": kind, "message": msg}


def _open_chdb(settings: Settings, paths: SharePaths, timeout: float) -> ClickHouseEngine:
    """Open chDB, retrying while a previous owner's chDB lock is still being released."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            return ClickHouseEngine(f"chdb://{paths.data}", settings.clickhouse_database,
                                    settings.clickhouse_cluster)
        except EngineUnavailable as exc:
            # this process already hosts another chDB path: retrying can never help
            if "already initialized" in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


class OwnerEngine:
    """Engine handle inside the owning process: direct chDB calls through the shared lanes."""

    is_owner = True
    read_parallelism = READ_HANDLES  # queries this engine answers at once (api/engine_gate.py)

    def __init__(self, owner: EngineOwner, database: str, busy_timeout: float) -> None:
        self._owner = owner
        self.database = database
        self.cluster = owner.engine.cluster
        self.busy_timeout = busy_timeout
        self._closed = False
        if database != owner.engine.database:
            self.command(f"CREATE DATABASE IF NOT EXISTS {database}")

    @property
    def owner_pid(self) -> int:
        return os.getpid()

    def ping(self) -> dict[str, Any]:
        """The owner's state (pid, role, busy, queued calls, connected clients)."""
        return self._owner.status()

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None,
                settings: Mapping[str, Any] | None = None) -> int:
        eng = self._owner.engine
        return self._owner.run("write", lambda: eng.command(sql, parameters, settings),
                               self.busy_timeout)

    def query_arrow(self, sql: str, parameters: Mapping[str, Any] | None = None,
                    settings: Mapping[str, Any] | None = None) -> pa.Table:
        return self._owner.read(lambda r: r.query_arrow(sql, parameters, settings),
                                self.busy_timeout)

    def query_rows(self, sql: str, parameters: Mapping[str, Any] | None = None,
                   settings: Mapping[str, Any] | None = None) -> list[tuple]:
        return self._owner.read(lambda r: r.query_rows(sql, parameters, settings),
                                self.busy_timeout)

    def insert_arrow(self, table: str, data: pa.Table,
                     settings: Mapping[str, Any] | None = None) -> int:
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        return self._owner.insert(table, data, settings, insert_wait(self.busy_timeout))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            release_owner(self._owner)

    def __enter__(self) -> OwnerEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def insert_wait(busy_timeout: float) -> float:
    """Insert batches wait longer than queries: ingestion must not fail because the API is busy."""
    return max(busy_timeout, 600.0)


# -- one owner per data directory per process ----------------------------------------------------

_REGISTRY: dict[Path, EngineOwner] = {}
_REGISTRY_LOCK = threading.RLock()
_CANNOT_OWN: dict[Path, str] = {}  # data dirs this process can never open (another chDB path)


def acquire_owner(settings: Settings, paths: SharePaths, role: str, busy_timeout: float,
                  open_timeout: float) -> OwnerEngine | None:
    """An owner handle if this process owns (or can now take) the data dir, else None."""
    with _REGISTRY_LOCK:
        owner = _REGISTRY.get(paths.data)
        if owner is None or owner.closed:
            if paths.data in _CANNOT_OWN:
                return None
            try:
                owner = EngineOwner.try_start(settings, paths, role, open_timeout)
            except EngineUnavailable as exc:
                if "already initialized" in str(exc):
                    _CANNOT_OWN[paths.data] = str(exc)
                    return None
                raise
            if owner is None:
                return None
            _REGISTRY[paths.data] = owner
        owner.refs += 1
        try:
            return OwnerEngine(owner, settings.clickhouse_database, busy_timeout)
        except BaseException:
            release_owner(owner)
            raise


def release_owner(owner: EngineOwner) -> None:
    with _REGISTRY_LOCK:
        owner.refs -= 1
        if owner.refs > 0:
            return
        if _REGISTRY.get(owner.paths.data) is owner:
            del _REGISTRY[owner.paths.data]
        owner.shutdown()


def cannot_own_reason(paths: SharePaths) -> str | None:
    return _CANNOT_OWN.get(paths.data)


def _shutdown_all() -> None:
    for owner in list(_REGISTRY.values()):
        with contextlib.suppress(Exception):
            owner.shutdown(drain_timeout=5.0)
    _REGISTRY.clear()


def _after_fork_in_child() -> None:
    for owner in list(_REGISTRY.values()):
        owner._forget_after_fork()
        # the child inherited a copy of a running chDB without its threads: never reopen it
        _CANNOT_OWN[owner.paths.data] = "forked from the engine owner process"
    _REGISTRY.clear()


atexit.register(_shutdown_all)
os.register_at_fork(after_in_child=_after_fork_in_child)
