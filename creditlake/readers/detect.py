"""Format detection by content (magic numbers and structure), not by extension.

`detect(path)` returns a registered format name or raises ReaderError with the reason the
file is quarantined. Other formats plug in by appending to DETECTORS.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from creditlake.readers.base import ReaderError
from creditlake.readers.textio import read_head, sniff_encoding

PARQUET_MAGIC = b"PAR1"
# A detector looks at the raw first bytes (not decompressed) and the decompressed head; it
# returns a format name or None. Order matters: binary containers first, then text formats.
Detector = Callable[[bytes, bytes, Path], "str | None"]


def _parquet(raw: bytes, head: bytes, path: Path) -> str | None:
    return "parquet" if raw.startswith(PARQUET_MAGIC) else None


def _text(head: bytes) -> str | None:
    enc = sniff_encoding(head)
    return head.decode(enc, errors="replace").lstrip("\ufeff")


def _json(raw: bytes, head: bytes, path: Path) -> str | None:
    text = _text(head).lstrip()
    if text.startswith("["):
        return "json"
    if text.startswith("{"):
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        # JSONL: several lines each a complete object. One multi-line object: a JSON document.
        if len(lines) >= 2 and lines[0].startswith("{") and lines[0].endswith("}") \
                and lines[1].startswith("{"):
            return "jsonl"
        if len(lines) == 1 and lines[0].endswith("}"):
            return "jsonl"
        return "json"
    return None


_BINARY_JUNK = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def _csv(raw: bytes, head: bytes, path: Path) -> str | None:
    sample = head[:65536]
    enc = sniff_encoding(sample)
    if enc != "utf-16" and len(_BINARY_JUNK.findall(sample)) > max(2, len(sample) // 1000):
        return None
    text = _text(sample)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return None
    if len(lines) == 1:
        return "csv"  # header-only file
    # Delimited text, or a single-column file (no delimiter at all) whose lines are printable.
    if any(d in lines[0] for d in ",;\t|"):
        return "csv"
    if all(ln.isprintable() for ln in lines[:50]) and len(lines[0]) <= 256:
        return "csv"
    return None


DETECTORS: list[Detector] = [_parquet, _json, _csv]


def _containers_xml_sql(raw: bytes, head: bytes, path: Path) -> str | None:
    """Zip/Excel/compressed containers, XML and SQL dumps (readers/archive.py decides)."""
    from creditlake.readers.archive import detect_container  # lazy: archive uses detect()

    return detect_container(raw, head, path)


DETECTORS.insert(0, _containers_xml_sql)  # binary containers and XML/SQL before text sniffing


def detect(path: Path) -> str:
    """Return the format name for `path`; ReaderError (the quarantine reason) if unknown."""
    if path.stat().st_size == 0:
        raise ReaderError("empty file (0 bytes)")
    with open(path, "rb") as f:
        raw = f.read(8192)
    head = read_head(path, 256 * 1024)
    if not head.strip():
        raise ReaderError("file has no content after decompression")
    for detector in DETECTORS:
        fmt = detector(raw, head, path)
        if fmt:
            return fmt
    raise ReaderError("unrecognized format: content is not CSV/TSV, JSON, JSON Lines, Parquet, "
                      "XML, an SQL dump, an Excel workbook or an archive (binary or garbled data)")
