"""Owner-side pieces that need no chDB: the FIFO gate, batch slicing, the published address."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from creditlake.clickhouse import EngineUnavailable
from creditlake.clickhouse.owner import FairGate, SharePaths, _write_info, iter_slices, read_info
from creditlake.clickhouse.sharing import connect
from creditlake.config import load_settings


def test_gate_serves_waiters_in_arrival_order() -> None:
    gate = FairGate()
    assert gate.acquire(1)
    order: list[int] = []
    threads = []
    for i in range(5):
        t = threading.Thread(target=lambda i=i: (gate.acquire(5), order.append(i), gate.release()))
        t.start()
        threads.append(t)
        while gate.waiting < i + 1:  # queue them in a known order
            time.sleep(0.001)
    gate.release()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3, 4]


def test_gate_times_out_and_leaves_the_queue() -> None:
    gate = FairGate()
    assert gate.acquire(1)
    t0 = time.perf_counter()
    assert gate.acquire(0.1) is False
    assert 0.09 < time.perf_counter() - t0 < 1.0
    assert gate.waiting == 0
    gate.release()
    assert gate.acquire(0.1)


def test_a_looping_holder_cannot_starve_a_waiter() -> None:
    gate = FairGate()
    stop = threading.Event()

    def hog() -> None:
        while not stop.is_set():
            gate.acquire(5)
            time.sleep(0.002)
            gate.release()

    t = threading.Thread(target=hog)
    t.start()
    time.sleep(0.02)
    t0 = time.perf_counter()
    assert gate.acquire(2)
    waited = time.perf_counter() - t0
    gate.release()
    stop.set()
    t.join()
    assert waited < 0.5


def test_slices_cover_the_table_without_copies() -> None:
    n = 100_000
    table = pa.table({"n": pa.array(np.arange(n)), "s": pa.array(np.arange(n).astype(str))})
    parts = list(iter_slices(table, 256 << 10))
    assert len(parts) > 5
    assert sum(p.num_rows for p in parts) == n
    assert pa.concat_tables(parts).equals(table)
    assert list(iter_slices(table.slice(0, 0), 1 << 20)) == []
    assert len(list(iter_slices(table, 1 << 40))) == 1


def _paths(tmp_path: Path) -> SharePaths:
    return SharePaths.for_settings(load_settings({"CREDITLAKE_HOME": str(tmp_path)}))


def test_paths_sit_next_to_the_chdb_directory(tmp_path: Path) -> None:
    p = _paths(tmp_path)
    assert p.data == (tmp_path / "clickhouse").resolve()
    assert p.lock.parent == p.info.parent == p.data.parent


def test_published_address_is_private_and_validated(tmp_path: Path) -> None:
    p = _paths(tmp_path)
    assert read_info(p) is None
    _write_info(p, {"pid": 1, "port": 1234, "token": "t"})
    assert os.stat(p.info).st_mode & 0o777 == 0o600
    assert read_info(p) == {"pid": 1, "port": 1234, "token": "t"}
    os.chmod(p.info, 0o644)  # readable by others: someone may have planted or copied it
    assert read_info(p) is None
    os.chmod(p.info, 0o600)
    p.info.write_text("{not json")
    assert read_info(p) is None
    p.info.write_text(json.dumps({"port": "x", "token": "t"}))
    assert read_info(p) is None


def test_a_server_url_needs_no_coordination(tmp_path: Path) -> None:
    settings = load_settings({"CREDITLAKE_HOME": str(tmp_path),
                              "CREDITLAKE_CLICKHOUSE_URL": "http://127.0.0.1:9/"})
    with pytest.raises(EngineUnavailable, match="cannot reach ClickHouse"):
        connect(settings, role="cli")  # the plain server client, which cannot reach port 9
    assert list(tmp_path.iterdir()) == []  # no lock, no address file, no chDB directory


def test_a_gate_with_slots_admits_that_many_at_once() -> None:
    gate = FairGate(slots=3)
    assert all(gate.acquire(0.1) for _ in range(3))
    assert gate.acquire(0.05) is False  # the fourth waits for a slot
    gate.release()
    assert gate.acquire(0.1)
