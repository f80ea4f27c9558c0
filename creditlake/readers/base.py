"""Reader contract: every format yields Arrow record batches of *string* landing columns.

Each batch carries the source's own column names (as found, values as text or null) plus
`source_row` (UInt64, 1-based record number within the source, for tracing rejects). Readers
never map or clean: that is rules/ and ingest/ work shared by every format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from creditlake import schema
from creditlake.config import ReadLimits

SOURCE_ROW = schema.SOURCE_ROW
DEFAULT_BATCH_ROWS = 200_000


class ReaderError(ValueError):
    """The file cannot be read as the detected format; the message is shown to users."""


@dataclass(frozen=True)
class ReaderOptions:
    batch_rows: int = DEFAULT_BATCH_ROWS
    encoding: str | None = None          # None: sniff
    delimiter: str | None = None         # CSV: None = sniff
    record_element: str | None = None    # XML: None = detect the repeating element
    sheet: str | None = None             # Excel: None = every sheet
    table: str | None = None             # SQL dump: None = every person-like table
    extra: dict[str, str] = field(default_factory=dict)
    limits: ReadLimits = ReadLimits()    # depth/size bounds (Settings.read_limits)


class Reader(Protocol):
    def __call__(self, path: Path, opts: ReaderOptions) -> Iterator[pa.RecordBatch]: ...


_REGISTRY: dict[str, Reader] = {}


def register(fmt: str) -> Callable[[Reader], Reader]:
    def deco(fn: Reader) -> Reader:
        _REGISTRY[fmt] = fn
        return fn

    return deco


def get_reader(fmt: str) -> Reader:
    try:
        return _REGISTRY[fmt]
    except KeyError:
        raise ReaderError(f"no reader for format {fmt!r}") from None


def formats() -> list[str]:
    return sorted(_REGISTRY)


# Multi-source files (SQL dumps with several tables, workbooks with several sheets, archives)
# tag each batch with its sub-source in the schema metadata; single-source readers don't.
SUBSOURCE_KEY = b"creditlake.subsource"


def tag_subsource(batch: pa.RecordBatch, name: str) -> pa.RecordBatch:
    meta = dict(batch.schema.metadata or {})
    meta[SUBSOURCE_KEY] = name.encode()
    return batch.replace_schema_metadata(meta)


def subsource_of(batch: pa.RecordBatch) -> str | None:
    meta = batch.schema.metadata or {}
    raw = meta.get(SUBSOURCE_KEY)
    return raw.decode() if raw else None


@dataclass
class ReaderRejects:
    """Records a reader could not turn into columns (ragged CSV rows, invalid JSON lines, ...).

    Readers that accept a `rejects` keyword append (source_row, raw_text, reason) here while
    streaming; the pipeline sends them to rejected_records so nothing is silently dropped.
    """

    rows: list[tuple[int, str, str]] = field(default_factory=list)

    def add(self, source_row: int, raw: str, reason: str) -> None:
        self.rows.append((source_row, raw[:10_000], reason))
