"""Batch building and in-band notices shared by the XML, SQL-dump, Excel and archive readers.

Notices: a reader that skips part of a file for a reason the user should see (a non-person
table in a dump, a statement that does not parse, an archive member rejected as a bomb) yields
a *zero-row* batch whose schema metadata carries the message under NOTICE_KEY (and the
sub-source under SUBSOURCE_KEY). Consumers that ignore metadata add zero rows, so nothing is
counted twice; the ingest code can turn each notice into an ingestion_log / Dagster message.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from creditlake.readers.base import SOURCE_ROW, tag_subsource

NOTICE_KEY = b"creditlake.notice"


def columns_batch(
    names: Sequence[str], columns: Sequence[pa.Array | list], first_row: int,
    row_numbers: Sequence[int] | None = None,
) -> pa.RecordBatch:
    """String columns + source_row numbered from `first_row` (1-based), or `row_numbers`."""
    n = len(columns[0]) if columns else 0
    arrays = [c if isinstance(c, pa.Array) else pa.array(c, pa.string()) for c in columns]
    rows = range(first_row, first_row + n) if row_numbers is None else row_numbers
    arrays.append(pa.array(rows, pa.uint64()))
    return pa.RecordBatch.from_arrays(arrays, names=[*names, SOURCE_ROW])


def unique_names(raw: Sequence[object]) -> list[str]:
    """The one header rule of every reader: names as found (trimmed); a blank header becomes
    column_<n> (its 1-based position), a repeat gets a _<k> suffix (email, email_2), so no
    column is lost. Users see these names as `metadata` keys."""
    out: list[str] = []
    seen: dict[str, int] = {}
    used: set[str] = set()
    for i, v in enumerate(raw, start=1):
        name = str(v).strip() if v is not None and str(v).strip() else f"column_{i}"
        if name == SOURCE_ROW:
            name = f"{SOURCE_ROW}_source"
        k = seen.get(name, 0) + 1
        candidate = name if k == 1 else f"{name}_{k}"
        while candidate in used:  # "a", "a_2", "a" must not give "a_2" twice
            k += 1
            candidate = f"{name}_{k}"
        seen[name] = k
        used.add(candidate)
        out.append(candidate)
    return out


def notice_batch(message: str, subsource: str | None = None) -> pa.RecordBatch:
    batch = pa.RecordBatch.from_arrays([pa.array([], pa.uint64())], names=[SOURCE_ROW])
    batch = batch.replace_schema_metadata({NOTICE_KEY: message.encode()})
    return tag_subsource(batch, subsource) if subsource else batch


def notice_of(batch: pa.RecordBatch) -> str | None:
    raw = (batch.schema.metadata or {}).get(NOTICE_KEY)
    return raw.decode() if raw else None
