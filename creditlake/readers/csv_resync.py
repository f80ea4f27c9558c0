"""Resynchronising CSV after a runaway quoted field.

One unbalanced quote (`a@x.org,"Ann,Rome`) makes every parser read the rest of the file as one
field. A vectorized pre-scan (numpy: quote parity and newlines, block by block) finds a quoted
field that spans more than `max_lines` lines or `max_bytes`, or is still open at the end of the
input; the physical line where it opened is the broken record: it is rejected with its line
number and the scan resumes, outside any quote, at the next line. Files without a runaway (the
normal case) are parsed as they are; files with one are parsed from a copy without the broken
lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

QUOTE, NEWLINE = 0x22, 0x0A
BLOCK = 16 << 20


@dataclass(frozen=True)
class Runaway:
    line: int   # 1-based physical line where the quoted field opened
    start: int  # byte offsets of that line in the (decompressed, UTF-8) input
    end: int    # exclusive, after its newline
    why: str


def _first_runaway(buf: bytes, max_lines: int, max_bytes: int, at_eof: bool
                   ) -> tuple[int, int, str] | None | int:
    """Scan `buf` (starting at a line start, outside quotes): (start, end, why) of the first
    runaway, or the number of bytes that are safely past (a line end outside any quote)."""
    arr = np.frombuffer(buf, np.uint8)
    quotes = np.flatnonzero(arr == QUOTE)
    nls = np.flatnonzero(arr == NEWLINE)
    # inside a quoted field at a newline <=> an odd number of quotes before it ("" is two)
    emb = (np.searchsorted(quotes, nls) & 1).astype(bool)
    if nls.size:
        # runs of consecutive embedded newlines: each is one (chain of) quoted field(s)
        edges = np.diff(np.concatenate(([0], emb.view(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        long_runs = np.flatnonzero(ends - starts > max_lines)
        if long_runs.size:
            j = int(starts[long_runs[0]])
            return _line_span(nls, j), f"a quoted field opened on this line runs past " \
                f"{max_lines} lines without its closing quote"
    open_at_end = bool(quotes.size & 1)
    safe = np.flatnonzero(~emb)
    safe_end = int(nls[safe[-1]]) + 1 if safe.size else 0
    if open_at_end and nls.size and emb[-1]:
        run_start = int(np.flatnonzero(~emb)[-1]) + 1 if safe.size else 0
        tail = len(buf) - (int(nls[run_start - 1]) + 1 if run_start else 0)
        if at_eof or tail > max_bytes:
            why = ("a quoted field opened on this line is never closed" if at_eof else
                   f"a quoted field opened on this line runs past {max_bytes:,} bytes")
            return _line_span(nls, run_start), why
    elif open_at_end and at_eof and arr.size:  # last line opens a quote and has no newline
        return (safe_end, len(buf)), "a quoted field opened on this line is never closed"
    return safe_end


def _line_span(nls: np.ndarray, j: int) -> tuple[int, int]:
    """Byte span of the physical line ended by newline number j (0-based)."""
    return (int(nls[j - 1]) + 1 if j else 0, int(nls[j]) + 1)


def find_runaways(f: BinaryIO, max_lines: int, max_bytes: int) -> list[Runaway]:
    out: list[Runaway] = []
    buf, offset, line, eof = b"", 0, 1, False  # buf starts at `offset`, physical line `line`
    while True:
        if not eof:
            chunk = f.read(BLOCK)
            eof = not chunk
            buf += chunk
        while buf:
            found = _first_runaway(buf, max_lines, max_bytes, eof)
            if isinstance(found, tuple):
                (a, b), why = found
                line_no = line + buf.count(b"\n", 0, a)
                out.append(Runaway(line_no, offset + a, offset + b, why))
                line, offset, buf = line_no + 1, offset + b, buf[b:]
                continue
            line += buf.count(b"\n", 0, found)
            offset, buf = offset + found, buf[found:]
            break
        if eof:
            return out


def without(f: BinaryIO, runaways: list[Runaway], removed: list[bytes]) -> Iterator[bytes]:
    """The input minus the runaways' lines, in blocks; each removed line's first 10,000 bytes
    are appended to `removed`."""
    pos = 0
    for r in runaways:
        yield from _copy(f, r.start - pos)
        head = f.read(min(r.end - r.start, 10_000))
        removed.append(head)
        _skip(f, r.end - r.start - len(head))
        pos = r.end
    while chunk := f.read(BLOCK):
        yield chunk


def _copy(f: BinaryIO, n: int) -> Iterator[bytes]:
    while n > 0 and (chunk := f.read(min(n, BLOCK))):
        n -= len(chunk)
        yield chunk


def _skip(f: BinaryIO, n: int) -> None:
    for _ in _copy(f, n):
        pass
