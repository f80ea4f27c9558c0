"""Garbage collection at a command's start-up and exit (issue 16).

Importing Dagster, SQLAlchemy, Polars, pyarrow and the app creates a few
hundred thousand objects that live as long as the process (modules, classes, functions). The
cyclic collector would walk all of them in every full collection while they are imported
(~0.55 s of a 2-row `creditlake ingest`) and again while the interpreter shuts down (~0.5 s).
`long_lived()` pauses collection while such objects are made and then moves them to the
permanent generation (`gc.freeze`); objects made later are collected as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived() -> Iterator[None]:
    """What the block allocates lives on: no collection during it, frozen after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def before_exit() -> None:
    """Freeze everything left: the interpreter's shutdown then skips walking it."""
    gc.freeze()

