"""Format detection by content (magic numbers and structure), not by extension.

`detect(path)` returns a registered format name or raises ReaderError with the reason the
file is quarantined. Other formats plug in by appending to DETECTORS.
"""

from __future__ import annotations

import codecs
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

from creditlake.readers.base import ReaderError
from creditlake.readers.excel import OLE_MAGIC, ZIP_MAGIC, looks_like_xlsx
from creditlake.readers.jsonl import decode_lenient, holds_records
from creditlake.readers.sql_dump import looks_like_sql_dump
from creditlake.readers.textio import BZ2_MAGIC, GZIP_MAGIC, ZSTD_MAGIC, read_head, sniff_encoding
from creditlake.readers.xml import looks_like_xml
from creditlake.rules.mapping import infer_mapping

UNRECOGNIZED = "unrecognized"  # the format of a file no reader recognizes (quarantined)
_EMPTY_ZIP = b"PK\x05\x06"
_PARQUET = b"PAR1"
_COMPRESSED = (GZIP_MAGIC, BZ2_MAGIC, ZSTD_MAGIC)

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
        # JSONL: a first line that is a whole object (a document cannot go on after it; a
        # bad later line is that line's reject). One multi-line object: a JSON document.
        if not lines or not lines[0].endswith("}"):
            return "json"
        if len(lines) > 1:
            return "jsonl"
        # One line: a record, or a minified document of records ({"data": [...]})
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            return "jsonl"
        try:
            return "json" if holds_records(decode_lenient(lines[0].encode())) else "jsonl"
        except (ValueError, RecursionError):
            return "jsonl"  # its reader rejects the line, with the reason
    if JSON_SUFFIXES.intersection(s.lower() for s in path.suffixes):
        _refuse_scalar(text)
    return None


JSON_SUFFIXES = {".json", ".jsonl", ".ndjson"}


def _refuse_scalar(text: str) -> None:
    """A JSON file that is one bare value (`null`, `42`, `"n/a"`): a document without
    records, said as such rather than as a one-column table."""
    try:
        decode_lenient(text.encode())
    except (ValueError, RecursionError):
        return
    raise ReaderError(f"JSON document holds no records: its whole content is one value, "
                      f"{text.strip()[:60]} (expected an array of objects, or an object "
                      f"holding one)")


_BINARY_JUNK = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def _csv(raw: bytes, head: bytes, path: Path) -> str | None:
    sample = head[:65536]
    enc = sniff_encoding(sample)
    if not enc.startswith("utf-16"):
        # NUL padding (fixed-width exports) is not binary: the CSV reader drops it
        sample = sample.replace(b"\x00", b"")
        if len(_BINARY_JUNK.findall(sample)) > max(2, len(sample) // 1000):
            return None
    text = _text(sample)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return None
    if any(d in lines[0] for d in ",;\t|"):
        return "csv"  # delimited text (or its header only)
    # One column, no delimiter: a table only if its header names a master field ("email");
    # prose, notes or bare values would map to nothing and every row would be rejected.
    if not infer_mapping([lines[0].strip()]).fields:
        raise ReaderError(f"not a table: one column without a delimiter whose first line "
                          f"{lines[0].strip()[:60]!r} names no known field (prose or notes?)")
    if all(ln.isprintable() for ln in lines[:50]) and len(lines[0]) <= 256:
        return "csv"
    return None


_HTML = re.compile(r"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>]|head[\s>]|body[\s>])",
                   re.IGNORECASE | re.DOTALL)


def _html(raw: bytes, head: bytes, path: Path) -> str | None:
    """An HTML page saved under a data file's name (an error page instead of the export)."""
    if _HTML.match(_text(head[:4096])):
        raise ReaderError("HTML page, not data (an error or login page saved as the export?)")
    return None


# ------------------------------------------------------------- containers, XML, SQL dumps

def is_zip(raw: bytes) -> bool:
    return raw.startswith((ZIP_MAGIC, _EMPTY_ZIP))


def is_tar(head: bytes) -> bool:
    """POSIX/GNU tar: "ustar" magic at offset 257 of the first header block."""
    return len(head) >= 262 and head[257:262] == b"ustar"


def is_compressed(raw: bytes) -> bool:
    return raw.startswith(_COMPRESSED)


def detect_container(raw: bytes, head: bytes, path: Path) -> str | None:
    """Detector for readers.detect (same signature as its DETECTORS): the formats of this
    module and of xml/sql_dump/excel. `raw` = first bytes on disk, `head` = decompressed.
    Binary database dumps we cannot stream are refused with the way to convert them."""
    if head.startswith(b"PGDMP"):
        raise ReaderError("PostgreSQL custom-format dump (pg_dump -Fc): convert it with "
                          "`pg_restore -f dump.sql FILE` (plain SQL) and ingest that")
    if head.startswith(b"SQLite format 3\x00"):
        raise ReaderError("SQLite database file: export the tables with `sqlite3 FILE .dump` "
                          "and ingest the dump")
    if is_zip(raw):
        return "excel" if looks_like_xlsx(raw, path) or _is_ods(path) else "archive"
    if raw.startswith(OLE_MAGIC):
        return "excel"
    if is_tar(head):
        return "archive"  # .tar, .tar.gz, .tar.bz2, .tar.zst
    if is_compressed(raw) and head.startswith((ZIP_MAGIC, _EMPTY_ZIP, OLE_MAGIC, _PARQUET,
                                               *_COMPRESSED)):
        return "archive"  # binary container inside a compressed stream: extract first
    if looks_like_xml(head):
        return "xml"
    if looks_like_sql_dump(head):
        return "sql"
    return None


def _is_ods(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.read("mimetype").startswith(b"application/vnd.oasis.opendocument.spread")
    except (KeyError, zipfile.BadZipFile, OSError):
        return False



DETECTORS: list[Detector] = [_parquet, _json, _csv]


DETECTORS.insert(0, detect_container)  # binary containers and XML/SQL before text sniffing
DETECTORS.insert(0, _html)  # before XML: `<html>` must not pass for an XML export


def detect(path: Path) -> str:
    """Return the format name for `path`; ReaderError (the quarantine reason) if unknown."""
    if path.stat().st_size == 0:
        raise ReaderError("empty file (0 bytes)")
    with open(path, "rb") as f:
        raw = f.read(8192)
    head = read_head(path, 256 * 1024)
    body = head
    for bom in (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        body = body.removeprefix(bom)
    if not body.replace(b"\x00", b"").strip():
        raise ReaderError("no content: only NUL bytes and blanks (a zero-filled file)"
                          if body.strip() else "no content: only blanks (or a byte-order mark)")
    for detector in DETECTORS:
        fmt = detector(raw, head, path)
        if fmt:
            return fmt
    raise ReaderError("unrecognized format: content is not CSV/TSV, JSON, JSON Lines, Parquet, "
                      "XML, an SQL dump, an Excel workbook or an archive (binary or garbled data)")


def detect_format(path: Path) -> tuple[str, str]:
    """(format, "") or (UNRECOGNIZED, the reason): detection that never raises, done once per
    file when it is registered and carried with it from then on."""
    try:
        return detect(path), ""
    except (ReaderError, OSError) as exc:
        return UNRECOGNIZED, str(exc)
