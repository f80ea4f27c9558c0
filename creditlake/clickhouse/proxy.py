"""The client side of the shared embedded engine: `ProxyEngine` (see clickhouse/sharing.py).

Sends SQL, parameters, settings and Arrow IPC batches to the owner over authenticated loopback
connections (a small pool, one connection per concurrent caller thread). When the owner goes
away the next call re-runs the election: this process may become the owner itself.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

import pyarrow as pa

from creditlake.clickhouse import wire
from creditlake.clickhouse.base import EngineError, EngineUnavailable
from creditlake.clickhouse.owner import (
    DEFAULT_BATCH_BYTES,
    RETRY,
    EngineBusy,
    OwnerEngine,
    SharePaths,
    acquire_owner,
    cannot_own_reason,
    insert_wait,
    iter_slices,
    read_info,
)
from creditlake.config import Settings

T = TypeVar("T")
Mode = Literal["serve", "use", "client"]

_ERRORS: dict[str, type[EngineError]] = {"EngineBusy": EngineBusy,
                                         "EngineUnavailable": EngineUnavailable}
STANDBY_POLL = 0.25  # how often a "serve" client checks whether the owner's lock came free


class _Conn:
    __slots__ = ("sock", "pid")

    def __init__(self, sock: socket.socket, pid: int) -> None:
        self.sock = sock
        self.pid = pid

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class ProxyEngine:
    """An Engine whose calls run in the owner process (or locally, once this process owns).

    mode: "use" may become the owner when none answers; "serve" also takes over as soon as the
    current owner exits (a background standby); "client" never opens chDB (for processes that
    already host another chDB path, such as the test runner).
    """

    is_owner = False

    def __init__(self, settings: Settings, *, role: str, mode: Mode = "use",
                 busy_timeout: float = 30.0, owner_timeout: float = 30.0,
                 call_timeout: float = 600.0, batch_bytes: int = DEFAULT_BATCH_BYTES) -> None:
        self.settings = settings
        self.database = settings.clickhouse_database
        self.cluster = settings.clickhouse_cluster
        self.role = role
        self.mode: Mode = mode
        self.busy_timeout = busy_timeout
        self.owner_timeout = owner_timeout
        self.call_timeout = call_timeout
        self.batch_bytes = batch_bytes
        self.paths = SharePaths.for_settings(settings)
        self.owner_pid: int | None = None
        self._local: OwnerEngine | None = None
        self._pool: list[_Conn] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False
        self._stop = threading.Event()
        self._standby: threading.Thread | None = None
        # like ClickHouseEngine; it also runs the election. Waits up to owner_timeout for its
        # turn: starting up while an ingest runs should be slow, not fail.
        self._call(lambda e: e.command(f"CREATE DATABASE IF NOT EXISTS {self.database}"),
                   {"op": "command", "sql": f"CREATE DATABASE IF NOT EXISTS {self.database}"},
                   None, lambda h, b: 0, idempotent=True, wait=max(busy_timeout, owner_timeout))
        if mode == "serve" and self._local is None:
            self._standby = threading.Thread(target=self._standby_loop, daemon=True,
                                             name="creditlake-engine-standby")
            self._standby.start()

    @property
    def owns(self) -> bool:
        """True once this process took over ownership (calls then run locally)."""
        return self._local is not None

    # -- Engine protocol ------------------------------------------------------------------------

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None,
                settings: Mapping[str, Any] | None = None) -> int:
        return self._call(lambda e: e.command(sql, parameters, settings),
                          {"op": "command", "sql": sql, "parameters": parameters,
                           "settings": settings}, None,
                          lambda h, b: int(h.get("written", 0)), idempotent=False)

    def query_arrow(self, sql: str, parameters: Mapping[str, Any] | None = None,
                    settings: Mapping[str, Any] | None = None) -> pa.Table:
        return self._call(lambda e: e.query_arrow(sql, parameters, settings),
                          {"op": "query_arrow", "sql": sql, "parameters": parameters,
                           "settings": settings}, None,
                          lambda h, b: wire.ipc_to_arrow(b) if b else pa.table({}),
                          idempotent=True)

    def query_rows(self, sql: str, parameters: Mapping[str, Any] | None = None,
                   settings: Mapping[str, Any] | None = None) -> list[tuple]:
        return self._call(lambda e: e.query_rows(sql, parameters, settings),
                          {"op": "query_rows", "sql": sql, "parameters": parameters,
                           "settings": settings}, None,
                          lambda h, b: wire.unpack_rows(b) if b else [], idempotent=True)

    def insert_arrow(self, table: str, data: pa.Table,
                     settings: Mapping[str, Any] | None = None) -> int:
        """Streams the table in ~batch_bytes messages; each is one turn at the owner's write
        gate, so other writers interleave with a long insert (reads have their own lane)."""
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        written = 0
        wait = insert_wait(self.busy_timeout)
        for part in iter_slices(data, self.batch_bytes):
            written += self._call(
                lambda e, p=part: e.insert_arrow(table, p, settings),
                {"op": "insert", "table": table, "settings": settings}, part,
                lambda h, b: int(h.get("written", 0)), idempotent=False, wait=wait)
        return written

    def ping(self) -> dict[str, Any]:
        """The owner's state (pid, role, busy, queued calls, connected clients); no gate turn."""
        return self._call(lambda e: e.ping(), {"op": "ping"}, None,
                          lambda h, b: {k: v for k, v in h.items() if k != "ok"},
                          idempotent=True)

    def close(self) -> None:
        self._closed = True
        self._stop.set()
        with self._lock:
            pool, self._pool = self._pool, []
            local, self._local = self._local, None
        for c in pool:
            c.close()
        if local is not None:
            local.close()

    def __enter__(self) -> ProxyEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ----------------------------------------------------------------------------------

    def _call(self, local: Callable[[OwnerEngine], T], header: dict[str, Any],
              body: pa.Table | None, decode: Callable[[dict[str, Any], Any], T], *,
              idempotent: bool, wait: float | None = None) -> T:
        if self._closed:
            raise EngineError("engine is closed")
        wait = self.busy_timeout if wait is None else wait
        header["wait"] = wait
        payload = None
        deadline = time.monotonic() + self.owner_timeout
        while True:
            if self._local is not None:
                return local(self._local)
            conn = self._checkout(deadline)
            if conn is None:  # the election made this process the owner
                continue
            if body is not None and payload is None:
                payload = wire.arrow_to_ipc(body)
            sent = False
            try:
                conn.sock.settimeout(wait + self.call_timeout)
                wire.send_msg(conn.sock, header, payload)
                sent = True
                resp, rbody = wire.recv_msg(conn.sock)
            except TimeoutError as exc:
                conn.close()
                raise EngineUnavailable(
                    f"engine owner pid {conn.pid} did not answer within "
                    f"{wait + self.call_timeout:.0f}s") from exc
            except (OSError, EOFError, wire.ProtocolError) as exc:
                conn.close()
                if sent and not idempotent:
                    # it may or may not have run: retrying could apply it twice
                    raise EngineUnavailable(
                        f"engine owner pid {conn.pid} went away during {header['op']}; "
                        "its outcome is unknown") from exc
                if time.monotonic() > deadline:
                    raise EngineUnavailable(f"engine owner pid {conn.pid} went away") from exc
                continue  # the owner is gone: re-run the election
            if resp.get("error") == RETRY:  # the owner is leaving and did not run it
                conn.close()
                if time.monotonic() > deadline:
                    raise EngineUnavailable(str(resp.get("message")))
                continue
            self._checkin(conn)
            if not resp.get("ok"):
                cls = _ERRORS.get(str(resp.get("error")), EngineError)
                raise cls(str(resp.get("message", "engine error")))
            return decode(resp, rbody)

    def _checkout(self, deadline: float) -> _Conn | None:
        with self._lock:
            if os.getpid() != self._pid:  # forked: the parent's sockets are not ours to use
                for c in self._pool:
                    c.close()
                self._pool, self._pid = [], os.getpid()
            while self._pool:
                c = self._pool.pop()
                if not wire.peer_closed(c.sock):
                    return c
                c.close()
        return self._elect(deadline)

    def _checkin(self, conn: _Conn) -> None:
        with self._lock:
            if not self._closed and self._local is None and len(self._pool) < 16:
                self._pool.append(conn)
                return
        conn.close()

    # -- election ---------------------------------------------------------------------------------

    def _elect(self, deadline: float) -> _Conn | None:
        """Own the engine if the lock is free (unless mode == "client"), else dial the owner.
        Retries until an owner answers or the deadline passes."""
        last: BaseException | str | None = None
        delay = 0.02
        while True:
            if self.mode != "client":
                try:
                    handle = acquire_owner(self.settings, self.paths, self.role,
                                           self.busy_timeout,
                                           max(1.0, deadline - time.monotonic()))
                except EngineUnavailable as exc:
                    handle, last = None, exc
                if handle is not None:
                    self._promote(handle)
                    return None
            info = read_info(self.paths)
            if info is None:
                last = last or "no owner has published its address yet"
            else:
                try:
                    return self._dial(info)
                except (OSError, EOFError, wire.ProtocolError, EngineUnavailable) as exc:
                    last = exc  # stale address (crashed owner) or an owner still starting
            if time.monotonic() + delay > deadline:
                why = cannot_own_reason(self.paths)
                raise EngineUnavailable(
                    f"no engine owner for {self.paths.data} answered within "
                    f"{self.owner_timeout:.0f}s: {last}" + (f" (cannot own: {why})" if why else ""))
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    def _dial(self, info: dict[str, Any]) -> _Conn:
        sock = socket.create_connection(("127.0.0.1", int(info["port"])), timeout=2.0)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            token = str(info["token"])
            cnonce = secrets.token_bytes(16)
            wire.send_msg(sock, {"op": "hello", "nonce": cnonce, "role": self.role,
                                 "pid": os.getpid()})
            hello, _ = wire.recv_msg(sock, **wire.HANDSHAKE_LIMITS)
            if not wire.mac_ok(wire.mac(token, b"S", cnonce), hello.get("mac")):
                raise EngineUnavailable("the process on the owner's port is not the engine owner")
            wire.send_msg(sock, {"op": "auth", "mac": wire.mac(token, b"C", hello["nonce"])})
            ok, _ = wire.recv_msg(sock, **wire.HANDSHAKE_LIMITS)
            if not ok.get("ok"):
                raise EngineUnavailable(str(ok.get("message", "authentication failed")))
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        self.owner_pid = int(hello.get("pid", 0)) or None
        return _Conn(sock, self.owner_pid or 0)

    def _promote(self, handle: OwnerEngine) -> None:
        with self._lock:
            if self._local is not None or self._closed:
                extra = handle
            else:
                self._local, extra = handle, None
                pool, self._pool = self._pool, []
                self.owner_pid = os.getpid()
        if extra is not None:
            extra.close()
            return
        for c in pool:
            c.close()

    def _standby_loop(self) -> None:
        """mode="serve": take over the moment the current owner releases the lock."""
        while not self._stop.wait(STANDBY_POLL):
            if self._local is not None:
                return
            try:
                handle = acquire_owner(self.settings, self.paths, self.role, self.busy_timeout,
                                       self.owner_timeout)
            except EngineUnavailable:
                continue
            if handle is not None:
                self._promote(handle)
                return
