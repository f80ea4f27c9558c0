"""Keeping both cores busy in a stage without changing its results: the next batch is read
(prefetched) or prepared (in_order) on another thread while the caller handles the current
one, and the caller still sees every item in its original order.

Both rely on the heavy work releasing the GIL (pyarrow's parsers, Polars' kernels, chDB).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_END = object()  # the producer's last item: the iterable is exhausted (or it failed)
_POLL = 0.1      # seconds between a blocked producer's checks that the consumer still wants


def in_order(pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], depth: int
             ) -> Iterator[R]:
    """fn(item) for each item on `pool`, `depth` at most at once, results in item order: the
    next items are being worked on while the caller handles one. An error of fn(item) is
    raised when that item's turn comes, after every earlier result."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def prefetched(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """The items of `items`, produced on a thread up to `depth` ahead of the consumer (so a
    reader parses batch i+1 while batch i is mapped and written). An error of the iterable
    is raised in the consumer after every item produced before it; a consumer that stops
    early (an error of its own) stops the producer, which closes the iterable on its thread."""
    q: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        it = iter(items)
        try:
            for item in it:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            put((_END, exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:  # a generator's finally blocks run on the thread it ran on
                close()

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if exc is not None:
                raise exc
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
