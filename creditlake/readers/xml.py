"""XML reader: record-oriented documents streamed with lxml.iterparse in bounded memory.

The record element is `opts.record_element` or detected on a prefix of the file: the shallowest
element path (below the root) that repeats and looks like a record (has children or attributes).
Columns: the record's attributes, its leaf children's text, nested children flattened with dots
(`address.city`), attributes of nested children as `child.attr`; repeated children get `[2]`,
`[3]` suffixes. Namespaces are stripped to local names. Columns appear in first-seen order and
a batch always carries every column seen so far (the schema only grows along the file).
"""

from __future__ import annotations

import codecs
import contextlib
import re
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
from lxml import etree

from creditlake.readers._batches import columns_batch, notice_batch
from creditlake.readers.base import (
    SOURCE_ROW,
    ReaderError,
    ReaderOptions,
    ReaderRejects,
    register,
    tag_subsource,
)
from creditlake.readers.sql_dump import is_person_table
from creditlake.readers.textio import (
    BZ2_MAGIC,
    CHUNK,
    GZIP_MAGIC,
    ZSTD_MAGIC,
    Utf8Stream,
    open_binary,
    read_head,
    scan_utf8,
)
from creditlake.readers.xml_prune import MARKER, prune_deep

SNIFF_ELEMENTS = 20_000  # elements inspected to detect the record element
MAX_BATCH_ROWS = 50_000  # records are Python strings until batched: keep that bounded
SWEEP = 1024  # records between removals of processed (emptied) elements from the tree
# Untrusted input: no DTD entity expansion (billion laughs, XXE file reads), no network.
# huge_tree lifts libxml2's text-node/depth limits, which real multi-GB exports hit.
PARSER_OPTIONS = {"huge_tree": True, "resolve_entities": False, "no_network": True,
                  "load_dtd": False}


def looks_like_xml(head: bytes) -> bool:
    """True for a document that starts (after BOM/whitespace/comments) with an XML tag."""
    text = _decode_head(head).lstrip()
    if text.startswith("<?xml"):
        return True
    while text.startswith("<!--"):
        end = text.find("-->")
        if end < 0:
            return False
        text = text[end + 3 :].lstrip()
    low = text[:200].lower()
    if low.startswith(("<!doctype html", "<html")):
        return False
    return len(text) > 1 and text[0] == "<" and (text[1].isalpha() or text[1] in "_!")


def _decode_head(head: bytes) -> str:
    for bom, enc in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                     (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom):].decode(enc, "ignore")
    if head[:2] == b"<\x00":
        return head.decode("utf-16-le", "ignore")
    if head[:2] == b"\x00<":
        return head.decode("utf-16-be", "ignore")
    return head.decode("utf-8", "ignore")


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def detect_record_element(path: Path, name: str | None = None) -> tuple[str, int, bool]:
    """(local name, depth below the root, also-nested-deeper) of the record element (see the
    module docstring). With `name` given, only its depth is looked up."""
    counts: dict[tuple[str, ...], int] = {}
    recordish: set[tuple[str, ...]] = set()
    stack: list[str] = []
    seen = 0
    src = _source(path)
    try:
        for event, el in etree.iterparse(src, events=("start", "end"), **PARSER_OPTIONS):
            if event == "start":
                stack.append(_local(el.tag) if isinstance(el.tag, str) else "")
                continue
            key = tuple(stack)
            stack.pop()
            if len(key) >= 2:
                counts[key] = counts.get(key, 0) + 1
                if len(el) or el.attrib:
                    recordish.add(key)
            seen += 1
            if seen >= SNIFF_ELEMENTS:
                break
            # keep the sniff itself bounded
            if len(key) == 2:
                el.clear()
    except etree.XMLSyntaxError as exc:
        if "depth" in str(exc.msg).lower():
            # stopped inside the first records: the elements still open just below the
            # root have children, so they are candidates (the read pass prunes the depth)
            for open_el in (tuple(stack[:n]) for n in range(2, min(len(stack), 3) + 1)):
                counts[open_el] = counts.get(open_el, 0) + 1
                recordish.add(open_el)
        if not counts:  # (a truncated compressed stream: the read pass reports it)
            raise ReaderError(f"not well-formed XML (line {exc.lineno}): {exc.msg}") from None
    finally:
        if not isinstance(src, str):
            src.close()

    def depths(local: str) -> list[int]:
        return sorted({len(k) - 1 for k in counts if k[-1] == local})

    if name is not None:
        ds = depths(name)
        return name, (ds[0] if ds else -1), len(ds) > 1
    cands = sorted(recordish, key=lambda k: (len(k), -(counts[k] >= 2), -counts[k]))
    repeating = [k for k in cands if counts[k] >= 2]
    pick = repeating[0] if repeating else (cands[0] if cands else None)
    if pick is None:
        raise ReaderError("no record element found: the XML root has no child elements "
                          "with attributes or children (set record_element in the mapping)")
    return pick[-1], len(pick) - 1, len(depths(pick[-1])) > 1


class _Records:
    """Flattens record elements straight into column lists (no per-record dicts).

    A column first seen at record i is back-filled with nulls; a column already filled for
    the current record (a repeated child) spills into "name[2]", "name[3]", ...
    Column names are cached per (prefix, tag): per element the work is a dict lookup."""

    def __init__(self) -> None:
        self.cols: dict[str, list[str | None]] = {}
        self.n = 0  # records complete in the current batch
        self.keys: dict[tuple[str, str], str] = {}

    def key(self, prefix: str, tag: str) -> str:
        k = self.keys.get((prefix, tag))
        if k is None:
            k = self.keys[(prefix, tag)] = prefix + tag.rpartition("}")[2]
        return k

    def put(self, name: str, value: str) -> None:
        n = self.n
        col = self.cols.get(name)
        if col is None:
            col = self.cols[name] = [None] * n
        elif len(col) > n:  # already set for this record: a repeated element
            i = 2
            while len(self.cols.get(f"{name}[{i}]", ())) > n:
                i += 1
            self.put(f"{name}[{i}]", value)
            return
        elif len(col) < n:
            col.extend([None] * (n - len(col)))
        col.append(value)

    def add(self, el: etree._Element, record: str) -> None:
        if len(el) == 0 and not el.items():
            if el.text and el.text.strip():  # a list of scalar records: <emails><email>…
                self.put(record, el.text)
        else:
            self._flatten(el, "")
        self.n += 1

    def _flatten(self, el: etree._Element, prefix: str) -> None:
        keys, key, cols, put, n = self.keys, self.key, self.cols, self.put, self.n
        for k, v in el.items():
            put(key(prefix, k), v)
        for child in el:
            tag = child.tag
            if tag.__class__ is not str:  # comments, processing instructions, entities
                continue
            name = keys.get((prefix, tag)) or key(prefix, tag)
            if len(child):
                self._flatten(child, name + ".")
                continue
            attrs = child.items()
            if attrs:
                named = _named_field(tag, attrs)
                if named is not None:  # <field name="email">…</field>, xsi:nil="true"
                    col_name, nil = named
                    put(keys.get((prefix, col_name)) or key(prefix, col_name),
                        None if nil else (child.text or ""))
                    continue
                for k, v in attrs:
                    put(key(name + ".", k), v)
                text = child.text
                if text and text.strip():
                    put(name, text)
                continue
            col = cols.get(name)
            if col is not None and len(col) == n:  # the common case: next value of a column
                col.append(child.text or "")
            else:
                put(name, child.text or "")

    def batch(self, first: int) -> pa.RecordBatch:
        for col in self.cols.values():
            if len(col) < self.n:
                col.extend([None] * (self.n - len(col)))
        b = columns_batch(list(self.cols), list(self.cols.values()), first)
        self.cols = {k: [] for k in self.cols}  # keep every column seen so far
        self.n = 0
        return b


XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
# key/value serializations: <field name="email">a@b.c</field> is the column "email"
_FIELD_TAGS = {"field", "column", "col", "attribute", "attr", "property", "prop", "value",
               "data", "item", "entry", "cell"}


def _named_field(tag: str, attrs: list[tuple[str, str]]) -> tuple[str, bool] | None:
    """(column, is_null) for a key/value leaf or an xsi:nil leaf; None for other leaves."""
    nil = any(k == XSI_NIL and v in ("true", "1") for k, v in attrs)
    if tag.rpartition("}")[2].lower() in _FIELD_TAGS:
        names = [v for k, v in attrs if k.rpartition("}")[2] in ("name", "Name", "key")]
        if len(names) == 1 and all(k == XSI_NIL or k.rpartition("}")[2] in ("name", "Name",
                                   "key") for k, _ in attrs):
            return names[0], nil
    if nil and len(attrs) == 1:
        return tag.rpartition("}")[2], True
    return None


def _depth(el: etree._Element) -> int:
    d = 0
    p = el.getparent()
    while p is not None:
        d += 1
        p = p.getparent()
    return d


class _Guarded:
    """A decompressing stream that ends cleanly at a truncation (one decompression step per
    read, so nothing before the cut is lost) and remembers the error for the message."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.read1 = getattr(raw, "read1", raw.read)
        self.error: Exception | None = None

    def read(self, n: int = -1) -> bytes:
        if self.error is not None:
            return b""
        try:
            return self.read1(n if n and n > 0 else 1 << 16)
        except (EOFError, OSError, zlib.error) as exc:
            self.error = exc
            return b""

    def close(self) -> None:
        self.raw.close()


def _source(path: Path) -> str | _Guarded:
    """A path for lxml's own (fast) file I/O; a decompressing stream for gzip/bz2/zstd."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic.startswith((GZIP_MAGIC, BZ2_MAGIC, ZSTD_MAGIC)):
        return _Guarded(open_binary(path))
    return str(path)


def _root_name(path: Path) -> str:
    src = _source(path)
    try:
        for _, el in etree.iterparse(src, events=("start",), **PARSER_OPTIONS):
            return _local(el.tag)
    except etree.XMLSyntaxError:
        return ""
    finally:
        if not isinstance(src, str):
            src.close()
    return ""


@register("xml")
def read(path: Path, opts: ReaderOptions, rejects: ReaderRejects | None = None
         ) -> Iterator[pa.RecordBatch]:
    """Records as batches. `mysqldump --xml` / `mariadb-dump --xml` files are read like SQL
    dumps: <row>s of each <table_data name=…> are the sub-source "<file>#<table>", and
    tables without person columns are skipped with a notice."""
    path = Path(path)
    with contextlib.ExitStack() as stack:
        if _stray_non_utf8(path):
            path = _repaired_copy(path, opts, stack)
        if not opts.record_element and _root_name(path) == "mysqldump":
            yield from _read_records(path, opts, "row", 3, False, by_table=True)
        else:
            record, depth, nested = detect_record_element(path, opts.record_element)
            yield from _read_records(path, opts, record, depth, nested, by_table=False,
                                     rejects=rejects)


_DECLARED_ENCODING = re.compile(rb"""\s*<\?xml[^>]*?encoding\s*=\s*["']([\w.:-]+)""")


def _stray_non_utf8(path: Path) -> bool:
    """A document in UTF-8 (declared, or by default) with bytes that are not: stray
    Latin-1/cp1252 bytes, which the other readers repair and libxml2 refuses outright."""
    head = read_head(path, 4096).removeprefix(codecs.BOM_UTF8)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, b"<\x00", b"\x00<")):
        return False
    declared = _DECLARED_ENCODING.match(head)
    if declared and declared.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
        return False  # ISO-8859-1, windows-1252, ...: libxml2 decodes it as declared
    return not scan_utf8(path)[0]


def _repaired_copy(path: Path, opts: ReaderOptions, stack: contextlib.ExitStack) -> Path:
    """A UTF-8 copy with the stray bytes decoded as cp1252, as the CSV reader does; under
    the same file name (a dump's sub-sources are named after it)."""
    td = Path(stack.enter_context(tempfile.TemporaryDirectory(
        prefix="creditlake-xml-", dir=opts.extra.get("tmp_dir"))))
    with Utf8Stream(open_binary(path), "utf-8") as src, open(td / path.name, "wb") as dst:
        shutil.copyfileobj(src, dst, CHUNK)
    return td / path.name


def _read_records(path: Path, opts: ReaderOptions, record: str, depth: int, nested: bool,
                  by_table: bool, rejects: ReaderRejects | None = None,
                  recovering: bool = False) -> Iterator[pa.RecordBatch]:
    batch_rows = min(opts.batch_rows, MAX_BATCH_ROWS)
    cols = _Records()
    first, n, total = 1, 0, 0
    table: str | None = None
    keep = True

    def out(b: pa.RecordBatch) -> pa.RecordBatch:
        return tag_subsource(b, f"{path.name}#{table}") if by_table else b

    src = _source(path)
    ctx = etree.iterparse(src, events=("end",), tag=f"{{*}}{record}", **PARSER_OPTIONS)
    try:
        for _, el in ctx:
            if nested and _depth(el) != depth:
                continue  # same name nested inside a record: part of that record
            if by_table:
                parent = el.getparent()
                name = (parent.get("name") if parent is not None else None) or "table"
                if name != table:  # next <table_data>: its own sub-source and numbering
                    if cols.n and keep:
                        yield out(cols.batch(first))
                    table, cols, first, n, keep = name, _Records(), 1, 0, True
                    fresh = True
                else:
                    fresh = False
            cols.add(el, record)
            n += 1
            total += 1
            el.clear(keep_tail=False)
            if by_table and fresh:
                wanted = opts.table
                if wanted:
                    keep = wanted.lower() == (table or "").lower()
                elif not is_person_table(list(cols.cols)):
                    keep = False
                    yield tag_subsource(notice_batch(
                        f"table {table} skipped: no person columns "
                        f"({', '.join(list(cols.cols)[:12])})"), f"{path.name}#{table}")
            if not keep:
                cols = _Records()
            # free the parsed record now, and every SWEEP records the emptied siblings
            # before it (one C-level slice delete instead of a Python loop per record)
            if total % SWEEP == 0 and (parent := el.getparent()) is not None:
                del parent[: parent.index(el)]
            if cols.n >= batch_rows:
                yield out(cols.batch(first))
                first = n + 1
    except etree.XMLSyntaxError as exc:
        if cols.n:
            yield out(cols.batch(first))
        if "depth" in str(exc.msg).lower() and not by_table and not recovering:
            yield from _recover_deep(path, opts, record, depth, nested, total, rejects)
            return
        if not isinstance(src, str) and src.error is not None:
            raise ReaderError(f"compressed XML stream is truncated or corrupt ({src.error}); "
                              f"{total} records before it were read") from None
        raise ReaderError(
            f"XML is truncated or malformed at line {exc.lineno}: {exc.msg} "
            f"({total} records before it were read)"
        ) from None
    finally:
        if not isinstance(src, str):
            src.close()
    if total == 0:
        raise ReaderError(f"no <{record}> elements found in the XML document")
    if cols.n:
        yield out(cols.batch(first))


def _recover_deep(path: Path, opts: ReaderOptions, record: str, depth: int, nested: bool,
                  done: int, rejects: ReaderRejects | None) -> Iterator[pa.RecordBatch]:
    """The parser stopped on nesting depth after `done` records: read a copy with the too-deep
    parts pruned (xml_prune.py), reject the records that had one, keep the ones after."""
    limit = depth + 1 + opts.limits.max_depth
    with tempfile.TemporaryDirectory(prefix="creditlake-xml-",
                                     dir=opts.extra.get("tmp_dir")) as td:
        pruned = Path(td) / "pruned.xml"
        with open_binary(path) as src, open(pruned, "wb") as dst:
            prune_deep(src, dst, limit)
        for b in _read_records(pruned, opts, record, depth, nested, by_table=False,
                               recovering=True):
            b = b.filter(pc.greater(b.column(SOURCE_ROW), done))  # already read before
            marks = [n for n in b.schema.names if n.endswith(MARKER)]
            if marks:
                deep = pc.is_valid(b.column(marks[0]))
                for m in marks[1:]:
                    deep = pc.or_(deep, pc.is_valid(b.column(m)))
                if rejects is not None:
                    for row in b.filter(deep).column(SOURCE_ROW).to_pylist():
                        rejects.add(row, f"<{record}> #{row}",
                                    f"record nested more than {opts.limits.max_depth} levels "
                                    "deep (over the parser's limit; CREDITLAKE_JSON_MAX_DEPTH)")
                b = b.filter(pc.invert(deep))
                b = b.select([n for n in b.schema.names if n not in marks])
            if b.num_rows:
                yield b
