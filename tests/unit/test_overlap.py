"""The stage helpers that overlap batches keep the items' order and the errors' position."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from creditlake.ingest.overlap import in_order, prefetched


def test_in_order_keeps_item_order_with_items_in_flight() -> None:
    def slow_first(i: int) -> int:
        time.sleep(0.05 if i % 2 == 0 else 0)  # later items finish first
        return i * 10

    with ThreadPoolExecutor(2) as pool:
        assert list(in_order(pool, slow_first, range(7), 2)) == [i * 10 for i in range(7)]


def test_in_order_runs_two_at_once() -> None:
    running, peak, lock = [0], [0], threading.Lock()

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return i

    with ThreadPoolExecutor(2) as pool:
        assert list(in_order(pool, work, range(6), 2)) == list(range(6))
    assert peak[0] == 2


def test_in_order_raises_at_the_failing_items_turn() -> None:
    def fail_at_3(i: int) -> int:
        if i == 3:
            raise ValueError("bad item 3")
        return i

    got: list[int] = []
    with ThreadPoolExecutor(2) as pool, pytest.raises(ValueError, match="bad item 3"):
        for r in in_order(pool, fail_at_3, range(6), 2):
            got.append(r)
    assert got == [0, 1, 2]


def test_prefetched_yields_everything_in_order() -> None:
    assert list(prefetched(iter(range(1000)))) == list(range(1000))


def test_prefetched_raises_after_the_items_before_the_error() -> None:
    def reader() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("truncated")

    got: list[int] = []
    with pytest.raises(OSError, match="truncated"):
        for x in prefetched(reader()):
            got.append(x)
    assert got == [1, 2]


def test_prefetched_stops_and_closes_the_reader_when_the_consumer_fails() -> None:
    closed = threading.Event()
    produced: list[int] = []

    def reader() -> Iterator[int]:
        try:
            for i in range(1_000_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    def consume() -> None:
        for x in prefetched(reader()):
            if x == 2:
                raise RuntimeError("mapping failed")

    with pytest.raises(RuntimeError, match="mapping failed"):
        consume()
    assert closed.is_set()          # the reader's cleanup ran before the error surfaced
    assert len(produced) <= 2 + 3   # and it read at most its depth ahead, not the whole file
