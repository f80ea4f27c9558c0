"""Sharing the embedded engine between processes, on real chDB.

chDB hosts one data path per process and this pytest process already hosts the session one, so
every owner here is a SUBPROCESS with its own fresh CREDITLAKE_HOME; the pytest process only
talks to owners through ProxyEngine(mode="client"), which never opens chDB.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from creditlake.clickhouse import EngineError, EngineUnavailable, wire
from creditlake.clickhouse.owner import SharePaths, read_info
from creditlake.clickhouse.sharing import EngineBusy, ProxyEngine, owner_status
from creditlake.config import Settings, load_settings

pytestmark = pytest.mark.integration

TABLE = "(w UInt32, n UInt64, s String) ENGINE = MergeTree ORDER BY (w, n)"

# A client process: `python -c WORKER home worker_id batches rows` inserts its batches through
# connect() (it finds the owner, so it is a ProxyEngine), querying between batches.
WORKER = r"""
import json, sys
import numpy as np, pyarrow as pa, pyarrow.compute as pc
from creditlake.config import load_settings
from creditlake.clickhouse.sharing import connect
w, batches, rows = map(int, sys.argv[1:4])
eng = connect(load_settings(), role="worker")
seen = []
for b in range(batches):
    n = pa.array(np.arange(b * rows, (b + 1) * rows, dtype=np.uint64))
    t = pa.table({"w": pa.array(np.full(rows, w, dtype=np.uint32)), "n": n,
                  "s": pc.cast(n, pa.string())})
    eng.insert_arrow("creditlake.t", t)
    seen.append(eng.query_rows("SELECT count() FROM creditlake.t WHERE w = {w:UInt32}",
                               {"w": w})[0][0])
print(json.dumps({"kind": type(eng).__name__, "seen": seen}))
eng.close()
"""

# A process that becomes the owner if nobody is (role "cli", mode "use") and reports the count.
USE = r"""
import json
from creditlake.config import load_settings
from creditlake.clickhouse.sharing import connect
eng = connect(load_settings(), role="cli")
print(json.dumps({"kind": type(eng).__name__, "pid": eng.owner_pid,
                  "count": eng.query_rows("SELECT count() FROM creditlake.t")[0][0]}))
eng.close()
"""

# Opening the owner's chDB path directly, as a process that ignored sharing would.
DIRECT = r"""
import sys
from creditlake.clickhouse.client import ClickHouseEngine
try:
    ClickHouseEngine(sys.argv[1], "creditlake")
except Exception as exc:
    print(type(exc).__name__)
else:
    print("opened")
"""


# An owner that forks (as a multiprocessing "fork" executor would): the child must neither keep
# the lock nor reuse the parent's chDB, and reaches the engine as a client of its parent.
FORK = r"""
import json, os
from creditlake.config import load_settings
from creditlake.clickhouse.sharing import connect
owner = connect(load_settings(), role="cli")
owner.command("CREATE TABLE creditlake.f (n UInt64) ENGINE = MergeTree ORDER BY n")
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    child = connect(load_settings(), role="cli")
    child.command("INSERT INTO creditlake.f SELECT number FROM numbers(7)")
    os.write(w, json.dumps({"kind": type(child).__name__, "pid": child.owner_pid}).encode())
    child.close()
    os._exit(0)
os.waitpid(pid, 0)
report = json.loads(os.read(r, 4096))
report["parent"] = os.getpid()
report["owner_kind"] = type(owner).__name__
report["count"] = owner.query_rows("SELECT count() FROM creditlake.f")[0][0]
print(json.dumps(report))
owner.close()
"""


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDITLAKE_")}
    env.update(CREDITLAKE_HOME=str(home), CREDITLAKE_CLICKHOUSE_URL=f"chdb://{home / 'ch'}",
               CREDITLAKE_CLICKHOUSE_DATABASE="creditlake", PYTHONUNBUFFERED="1")
    return env


def _settings(home: Path) -> Settings:
    return load_settings(_env(home))


class Owner:
    """`python -m creditlake.clickhouse.sharing serve` in a subprocess; it prints one JSON line when
    it waits as a standby client and one when it owns."""

    def __init__(self, home: Path, role: str = "serve") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "creditlake.clickhouse.sharing", "serve", "--role", role],
            env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[dict] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.pid: int | None = None

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def wait_for(self, key: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.lines.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, f"serve exited: {self.stop()}"
                continue
            if key in msg:
                return msg
        raise AssertionError(f"no {key!r} line from serve within {timeout}s")

    def wait_owning(self, timeout: float = 60.0) -> int:
        self.pid = self.wait_for("owner", timeout)["owner"]
        assert self.pid == self.proc.pid
        return self.pid

    def stop(self, sig: int = signal.SIGTERM) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.stderr.read() if self.proc.stderr else ""


def _run(script: str, home: Path, *args: object,
         timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], env=_env(home),
                          capture_output=True, text=True, timeout=timeout)


def _client(home: Path, **kw: object) -> ProxyEngine:
    return ProxyEngine(_settings(home), role="pytest", mode="client", **kw)


@pytest.fixture(scope="module")
def owned_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One owner subprocess shared by the tests that do not kill it."""
    home = tmp_path_factory.mktemp("shared_home")
    owner = Owner(home)
    owner.wait_owning()
    yield home
    err = owner.stop()
    assert owner.proc.returncode == 0, err
    assert not SharePaths.for_settings(_settings(home)).info.exists()  # removed on clean exit


@pytest.fixture
def client(owned_home: Path) -> Iterator[ProxyEngine]:
    eng = _client(owned_home)
    eng.command("DROP TABLE IF EXISTS creditlake.t")
    eng.command(f"CREATE TABLE creditlake.t {TABLE}")
    yield eng
    eng.close()


@pytest.mark.slow
def test_processes_and_threads_insert_and_query_concurrently(owned_home: Path,
                                                              client: ProxyEngine) -> None:
    workers, batches, rows = 2, 6, 5_000
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(w), str(batches), str(rows)],
                              env=_env(owned_home), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for w in range(workers)]
    answered: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def query_loop(seen: list[int]) -> None:
        eng = _client(owned_home)
        try:
            while any(p.poll() is None for p in procs):
                seen.append(eng.query_rows("SELECT count() FROM creditlake.t")[0][0])
                time.sleep(0.005)  # 2 shared cores: leave the workers some CPU
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            eng.close()

    threads = [threading.Thread(target=query_loop, args=(seen,)) for seen in answered]
    for t in threads:
        t.start()
    outs = [p.communicate(timeout=120) for p in procs]
    for t in threads:
        t.join(30)
    assert not errors
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        report = json.loads(out)
        assert report["kind"] == "ProxyEngine"
        assert report["seen"] == [rows * (b + 1) for b in range(batches)]  # own writes visible
    for seen in answered:
        assert seen and seen == sorted(seen)  # each thread sees counts only grow
    by_worker = client.query_rows("SELECT w, count(), uniqExact(n) FROM creditlake.t "
                                  "GROUP BY w ORDER BY w")
    assert by_worker == [(w, batches * rows, batches * rows) for w in range(workers)]


def test_results_and_errors_match_a_direct_engine(client: ProxyEngine, engine) -> None:
    import datetime as dt
    import uuid

    sql = ("SELECT {d:Date} AS d, {u:UUID} AS u, {t:Tuple(UInt8, String)} AS t, "
           "{a:Array(Nullable(Int64))} AS a, toDecimal64(12.5, 3) AS dec, "
           "toDateTime('2024-05-06 07:08:09') AS ts, map('k', 1) AS m, "
           "toInt128('170141183460469231731687303715884105727') AS big, "
           "toIPv4('10.1.2.3') AS ip")
    params = {"d": dt.date(2024, 2, 29), "u": uuid.uuid4(), "t": (7, "x"), "a": [1, None, 3]}
    assert client.query_rows(sql, params) == engine.query_rows(sql, params)
    remote, local = client.query_arrow(sql, params), engine.query_arrow(sql, params)
    assert remote.equals(local)
    # written_rows as the direct engine reports it (chDB's summary has none for INSERT…SELECT)
    ins = "INSERT INTO {db}.t SELECT 9, number, 'x' FROM numbers(10)"
    engine.command(f"CREATE TABLE {engine.database}.t {TABLE}")
    assert client.command(ins.format(db="creditlake")) == engine.command(
        ins.format(db=engine.database))
    with pytest.raises(EngineError, match="UNKNOWN_TABLE|Unknown table") as info:
        client.query_rows("SELECT * FROM creditlake.no_such_table")
    assert not isinstance(info.value, EngineUnavailable)
    # the connection is still usable after an error
    assert client.query_rows("SELECT count() FROM creditlake.t WHERE w = 9") == [(10,)]


def test_inserts_match_columns_by_name_and_fill_defaults(client: ProxyEngine) -> None:
    import pyarrow as pa

    client.command("CREATE TABLE creditlake.d (n UInt64, s String, tag String DEFAULT 'def', "
                   "l Array(String), c LowCardinality(String)) ENGINE = MergeTree ORDER BY n")
    data = pa.table({"c": ["x", None], "l": [["a"], None], "n": pa.array([2, 1], pa.uint64()),
                     "s": pa.array(["é", "b"], pa.large_string())})  # reordered, no `tag`
    assert client.insert_arrow("creditlake.d", data) == 2
    with_settings = pa.table({"n": pa.array([3], pa.uint64()), "s": ["c"]})
    assert client.insert_arrow("creditlake.d", with_settings,
                               settings={"insert_null_as_default": 1}) == 1  # insert_arrow path
    assert client.insert_arrow("creditlake.d", data.slice(0, 0)) == 0
    assert client.query_rows("SELECT n, s, tag, l, c FROM creditlake.d ORDER BY n") == [
        (1, "b", "def", [], ""), (2, "é", "def", ["a"], "x"), (3, "c", "def", [], "")]
    n = 10_000  # a larger batch, through the same spool-file insert
    big = pa.table({"c": ["y"] * n, "l": [["b", "c"]] * n,
                    "n": pa.array(range(10, 10 + n), pa.uint64()),
                    "s": pa.array(["é"] * n, pa.large_string())})
    assert client.insert_arrow("creditlake.d", big) == n
    assert client.query_rows(
        "SELECT count(), min(n), max(n), any(s), any(tag), any(l), any(c) FROM creditlake.d "
        "WHERE n >= 10") == [(n, 10, 9 + n, "é", "def", ["b", "c"], "y")]
    with pytest.raises(EngineError, match="(?i)unknown_table|doesn't exist|does not exist"):
        client.insert_arrow("creditlake.no_such_table", data)


@pytest.mark.slow
def test_queries_are_answered_while_a_large_insert_streams(owned_home: Path,
                                                           client: ProxyEngine) -> None:
    batches, rows = 4, 50_000  # 200K rows
    proc = subprocess.Popen([sys.executable, "-c", WORKER, "1", str(batches), str(rows)],
                            env=_env(owned_home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    latencies: list[float] = []
    seen: set[int] = set()
    while proc.poll() is None:
        t0 = time.perf_counter()
        seen.add(client.query_rows("SELECT count() FROM creditlake.t WHERE w = 1 AND n < "
                                   "{n:UInt64}", {"n": len(latencies)})[0][0])
        latencies.append(time.perf_counter() - t0)
        time.sleep(0.01)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    latencies.sort()
    print(f"\n{len(latencies)} queries during a {batches * rows}-row insert: "
          f"p50 {latencies[len(latencies) // 2] * 1e3:.1f} ms, max {latencies[-1] * 1e3:.1f} ms")
    assert len(latencies) >= 10  # the insert did not lock queries out
    assert latencies[-1] < 2.0  # one batch (~30 ms) plus a busy shared machine's noise
    assert client.query_rows("SELECT count() FROM creditlake.t WHERE w = 1") == [(batches * rows,)]


def test_a_busy_owner_answers_busy_within_the_callers_timeout(owned_home: Path,
                                                              client: ProxyEngine) -> None:
    from creditlake.clickhouse.owner import READ_HANDLES

    impatient = _client(owned_home, busy_timeout=0.3)
    others = [client] + [_client(owned_home) for _ in range(READ_HANDLES - 1)]
    slow = [threading.Thread(target=lambda c=c: c.query_rows("SELECT sleep(2)")) for c in others]
    for t in slow:
        t.start()
    try:
        deadline = time.monotonic() + 10
        # wait until slow queries hold every reader handle
        while impatient.ping()["reads_running"] < READ_HANDLES:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        t0 = time.perf_counter()
        with pytest.raises(EngineBusy, match="busy"):
            impatient.query_rows("SELECT 1")
        assert time.perf_counter() - t0 < 1.5
        for t in slow:
            t.join(10)
        assert impatient.query_rows("SELECT 1") == [(1,)]  # same object works again: no close
    finally:
        impatient.close()
        for c in others[1:]:
            c.close()


def test_a_long_write_does_not_hold_up_reads(owned_home: Path, client: ProxyEngine) -> None:
    """Reads and writes run in separate lanes (own chDB handles): a long ingest statement, such
    as a whole file's INSERT … SELECT, leaves queries answered."""
    writer = threading.Thread(target=lambda: client.command("SELECT sleep(2) FORMAT Null"))
    reader = _client(owned_home, busy_timeout=1.0)
    try:
        writer.start()
        deadline = time.monotonic() + 10
        while not reader.ping()["writing"]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        t0 = time.perf_counter()
        assert reader.query_rows("SELECT count() FROM creditlake.t") == [(0,)]
        assert time.perf_counter() - t0 < 1.0
        assert reader.ping()["writing"]  # the write was still running meanwhile
    finally:
        writer.join(10)
        reader.close()


def test_reads_run_in_parallel_on_the_owners_reader_pool(owned_home: Path) -> None:
    """The API's page queries run at once on the owner's reader handles (READ_HANDLES), so
    several clients are not served one after another."""
    from creditlake.clickhouse.owner import READ_HANDLES

    clients = [_client(owned_home, busy_timeout=10.0) for _ in range(READ_HANDLES)]
    try:
        threads = [threading.Thread(target=c.query_rows, args=("SELECT sleep(1)",))
                   for c in clients]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert time.perf_counter() - t0 < READ_HANDLES * 1.0 - 0.5  # not one after another
    finally:
        for c in clients:
            c.close()


def test_status_names_the_owner_without_opening_chdb(owned_home: Path) -> None:
    status = owner_status(_settings(owned_home))
    assert status["owner"]["role"] == "serve" and status["owner"]["pid"] > 0
    assert status["owner"]["busy"] is False
    empty = owner_status(_settings(owned_home / "nobody"))
    assert empty["owner"] is None


def test_strangers_cannot_use_the_owner(owned_home: Path) -> None:
    paths = SharePaths.for_settings(_settings(owned_home))
    info = read_info(paths)
    assert info is not None and os.stat(paths.info).st_mode & 0o777 == 0o600
    with socket.create_connection(("127.0.0.1", info["port"]), timeout=5) as sock:
        wire.send_msg(sock, {"op": "hello", "nonce": b"0" * 16})
        hello, _ = wire.recv_msg(sock)
        wire.send_msg(sock, {"op": "auth", "mac": wire.mac("wrong-token", b"C", hello["nonce"])})
        reply, _ = wire.recv_msg(sock)
        assert reply["ok"] is False
        with pytest.raises((EOFError, ConnectionError)):
            wire.recv_msg(sock)
    with socket.create_connection(("127.0.0.1", info["port"]), timeout=5) as sock:
        wire.send_msg(sock, {"op": "command", "sql": "DROP DATABASE creditlake"})
        with pytest.raises((EOFError, ConnectionError)):  # no handshake, no service
            wire.recv_msg(sock)


def test_connect_never_surfaces_cannot_lock_file(owned_home: Path, client: ProxyEngine) -> None:
    direct = _run(DIRECT, owned_home, f"chdb://{owned_home / 'ch'}")
    assert direct.stdout.strip() == "EngineUnavailable"
    assert "Cannot lock file" in direct.stderr  # what a second direct open runs into
    client.command("INSERT INTO creditlake.t SELECT 1, number, '' FROM numbers(5)")
    shared = _run(USE, owned_home)
    assert shared.returncode == 0, shared.stderr
    assert json.loads(shared.stdout) == {"kind": "ProxyEngine", "pid": client.owner_pid,
                                         "count": 5}
    assert "Cannot lock" not in shared.stderr


@pytest.mark.slow
def test_owner_leaving_mid_ingest_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """The owner exits cleanly while a client streams inserts: calls that had started finish,
    later ones are answered "not run" and the client (mode "use") takes over and retries them."""
    first = Owner(tmp_path, role="first")
    try:
        first.wait_owning()
        with _client(tmp_path) as eng:
            eng.command(f"CREATE TABLE creditlake.t {TABLE}")
        batches, rows = 20, 5_000
        worker = subprocess.Popen([sys.executable, "-c", WORKER, "4", str(batches), str(rows)],
                                  env=_env(tmp_path), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        with _client(tmp_path) as eng:  # wait until the ingest is under way
            deadline = time.monotonic() + 60
            while eng.query_rows("SELECT count() FROM creditlake.t")[0][0] < 3 * rows:
                assert time.monotonic() < deadline and worker.poll() is None
                time.sleep(0.05)
        err = first.stop()
        assert first.proc.returncode == 0, err
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        report = json.loads(out)
        assert report["seen"] == [rows * (b + 1) for b in range(batches)]
    finally:
        first.stop(signal.SIGKILL)
    took = json.loads(_run(USE, tmp_path).stdout)  # the worker owned it last, exited cleanly
    assert (took["kind"], took["count"]) == ("OwnerEngine", batches * rows)


@pytest.mark.slow
def test_owner_killed_a_client_takes_over_and_data_survives(tmp_path: Path) -> None:
    first = Owner(tmp_path, role="first")
    standby = None
    try:
        first.wait_owning()
        eng = _client(tmp_path, owner_timeout=60)
        eng.command(f"CREATE TABLE creditlake.t {TABLE}")
        eng.command("INSERT INTO creditlake.t SELECT 1, number, 'a' FROM numbers(1000)")
        assert eng.owner_pid == first.pid
        # a long-running "serve" process waits as a client, then takes over
        standby = Owner(tmp_path, role="standby")
        assert standby.wait_for("standby")["client_of"] == first.pid
        first.stop(signal.SIGKILL)  # no clean-up at all: the kernel drops its locks
        second = standby.wait_owning()
        assert eng.query_rows("SELECT count() FROM creditlake.t") == [(1000,)]
        assert eng.owner_pid == second
        eng.command("INSERT INTO creditlake.t SELECT 2, number, 'b' FROM numbers(10)")
        # the standby exits cleanly; the next connect() anywhere becomes the owner
        err = standby.stop()
        assert standby.proc.returncode == 0, err
        assert "Cannot lock" not in err
        took = _run(USE, tmp_path)
        assert took.returncode == 0, took.stderr
        assert json.loads(took.stdout)["kind"] == "OwnerEngine"
        assert json.loads(took.stdout)["count"] == 1010
        eng.close()
    finally:
        first.stop(signal.SIGKILL)
        if standby is not None:
            standby.stop(signal.SIGKILL)


@pytest.mark.slow
def test_a_forked_child_of_the_owner_becomes_its_client(tmp_path: Path) -> None:
    run = _run(FORK, tmp_path)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report == {"kind": "ProxyEngine", "pid": report["parent"], "parent": report["parent"],
                      "owner_kind": "OwnerEngine", "count": 7}
    # the lock went with the parent: the next process owns the engine again
    took = json.loads(_run(USE.replace("creditlake.t", "creditlake.f"), tmp_path).stdout)
    assert (took["kind"], took["count"]) == ("OwnerEngine", 7)


# The process that owns the engine inserts a batch the size of a normalize batch and counts
# the parts it made in a table that never merges.
OWN_INSERT = r"""
import json
import numpy as np, pyarrow as pa, pyarrow.compute as pc
from creditlake.config import load_settings
from creditlake.clickhouse.sharing import connect
from creditlake.ingest.manifest import MERGE_FREE_SETTINGS
eng = connect(load_settings(), role="cli")
eng.command("CREATE TABLE creditlake.parts (n UInt64, s String) ENGINE = MergeTree "
            f"ORDER BY n SETTINGS {MERGE_FREE_SETTINGS}")
n = pa.array(np.arange(200_000, dtype=np.uint64))
s = pc.binary_join_element_wise(pc.cast(n, pa.string()), pa.scalar("x" * 90), "")
t = pa.table({"n": n, "s": s})  # ~20 MB: a third of a 200K-row stage batch
eng.insert_arrow("creditlake.parts", t)
print(json.dumps({"kind": type(eng).__name__, "mb": t.nbytes >> 20, "parts": eng.query_rows(
    "SELECT count() FROM system.parts WHERE database = 'creditlake' AND table = 'parts' "
    "AND active")[0][0]}))
eng.close()
"""


def test_the_owners_insert_of_20_mb_is_one_part(tmp_path: Path) -> None:
    """An insert by the owning process (every normalize batch of `creditlake ingest`) is
    written in turns of 24 MB: 20 MB is one part of the stage table, not three 8 MB slices
    (at 8 MB a 10M-row stage table was 458 parts, and its load slower)."""
    out = subprocess.run([sys.executable, "-c", OWN_INSERT], env=_env(tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["kind"] == "OwnerEngine" and got["mb"] >= 16
    assert got["parts"] == 1, got


def test_a_clients_insert_of_20_mb_is_one_part(client: ProxyEngine) -> None:
    """The same through a client (a run the landing sensor launched while the API owns the
    engine): one message, one part."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from creditlake.ingest.manifest import MERGE_FREE_SETTINGS

    client.command("CREATE TABLE creditlake.client_parts (n UInt64, s String) ENGINE = "
                   f"MergeTree ORDER BY n SETTINGS {MERGE_FREE_SETTINGS}")
    n = pa.array(np.arange(200_000, dtype=np.uint64))
    t = pa.table({"n": n, "s": pc.binary_join_element_wise(pc.cast(n, pa.string()),
                                                           pa.scalar("x" * 90), "")})
    assert t.nbytes >= 16 << 20
    assert client.insert_arrow("creditlake.client_parts", t) == 200_000
    assert client.query_rows("SELECT count() FROM system.parts WHERE database = 'creditlake' "
                             "AND table = 'client_parts' AND active") == [(1,)]
