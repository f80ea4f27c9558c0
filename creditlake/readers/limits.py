"""Cheap pre-scans that bound JSON records *before* a parser sees them.

Polars' and msgspec's JSON parsers recurse per nesting level: a line nested 1,000 levels
crashes the process (SIGSEGV in polars), 500 levels take minutes and GBs in flattening. So the
bytes are scanned first, vectorized with numpy: bracket depth (a running sum of `{[` minus
`]}`), field count (colons) and length per record. Brackets and colons inside strings make the
scan an upper bound; only records it flags are scanned again exactly (strings masked), so a
record is rejected only when it really is over a limit.
"""

from __future__ import annotations

import re

import numpy as np

from creditlake.config import ReadLimits

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_OPEN = (0x7B, 0x5B)   # { [
_CLOSE = (0x7D, 0x5D)  # } ]
_COLON = 0x3A
SCAN_CHUNK = 16 << 20  # bounds the scan's temporary arrays (~6 bytes per input byte)


def _delta(arr: np.ndarray) -> np.ndarray:
    d = ((arr == _OPEN[0]) | (arr == _OPEN[1])).astype(np.int32)
    d -= (arr == _CLOSE[0]) | (arr == _CLOSE[1])
    return d


def exact_shape(record: bytes) -> tuple[int, int]:
    """(nesting depth, field count) of one record, strings masked out."""
    bare = _STRING.sub(b'""', record)
    arr = np.frombuffer(bare, np.uint8)
    if not arr.size:
        return 0, 0
    depth = int(np.cumsum(_delta(arr)).max(initial=0))
    return depth, int(np.count_nonzero(arr == _COLON))


def problem(record: bytes, limits: ReadLimits, base_depth: int = 0) -> str | None:
    """Why `record` must be rejected (exact check), or None. base_depth: levels of the
    enclosing document (an array element of a top-level array sits 1 level down)."""
    if len(record) > limits.max_record_bytes:
        return (f"record is {len(record):,} bytes, over the {limits.max_record_bytes:,}-byte "
                "limit (CREDITLAKE_MAX_RECORD_BYTES)")
    depth, fields = exact_shape(record)
    depth -= base_depth
    if depth > limits.max_depth:
        return (f"record nested {depth:,} levels deep, over the limit of {limits.max_depth} "
                "(CREDITLAKE_JSON_MAX_DEPTH)")
    if fields > limits.max_fields:
        return (f"record has {fields:,} fields, over the limit of {limits.max_fields:,} "
                "(CREDITLAKE_MAX_RECORD_FIELDS)")
    return None


def flag_lines(lines: list[bytes], limits: ReadLimits) -> dict[int, str]:
    """{index: reason} for the lines over a limit; one vectorized pass over the block."""
    if not lines:
        return {}
    lens = np.fromiter(map(len, lines), np.int64, len(lines))
    suspect = lens > limits.max_record_bytes
    joined = b"\n".join(lines)
    starts = np.concatenate(([0], np.cumsum(lens + 1)[:-1]))
    arr = np.frombuffer(joined, np.uint8)
    cs = np.cumsum(_delta(arr))
    base = np.where(starts > 0, cs[np.maximum(starts - 1, 0)], 0)
    depth = np.maximum.reduceat(cs, starts) - base
    colons = np.add.reduceat((arr == _COLON).astype(np.int32), starts)
    suspect |= (depth > limits.max_depth) | (colons > limits.max_fields)
    out: dict[int, str] = {}
    for i in np.flatnonzero(suspect).tolist():  # rare: only flagged lines
        reason = problem(lines[i], limits)
        if reason:
            out[i] = reason
    return out


def naive_max_depth(data: bytes | bytearray | memoryview) -> int:
    """Upper bound of the nesting depth of a whole document, scanned in bounded chunks."""
    view = memoryview(data).cast("B")
    level, peak = 0, 0
    for lo in range(0, len(view), SCAN_CHUNK):
        cs = np.cumsum(_delta(np.frombuffer(view[lo: lo + SCAN_CHUNK], np.uint8))) + level
        if cs.size:
            peak = max(peak, int(cs.max()))
            level = int(cs[-1])
    return peak


def array_elements(doc: bytes) -> list[tuple[int, int]] | None:
    """(start, end) byte spans of the elements of a top-level JSON array, strings masked, or
    None when `doc` is not an array. Error path only (called when a document is too deep)."""
    arr = np.frombuffer(doc, np.uint8).copy()
    for m in _STRING.finditer(doc):  # blank strings out so their brackets/commas don't count
        arr[m.start(): m.end()] = 0x20
    nonspace = np.flatnonzero(~np.isin(arr, (0x20, 0x09, 0x0A, 0x0D)))
    if not nonspace.size or arr[nonspace[0]] != _OPEN[1]:
        return None
    cs = np.cumsum(_delta(arr))
    first = int(nonspace[0])
    # separators: commas at depth 1; the array's own closing bracket ends the last element
    seps = np.flatnonzero((arr == 0x2C) & (cs == 1))
    closing = np.flatnonzero((cs == 0) & np.isin(arr, _CLOSE))
    end = int(closing[0]) if closing.size else len(arr)
    seps = seps[(seps > first) & (seps < end)]
    bounds = [first + 1, *(seps + 1).tolist()]
    ends = [*seps.tolist(), end]
    spans = [(a, b) for a, b in zip(bounds, ends, strict=True) if doc[a:b].strip()]
    return spans
