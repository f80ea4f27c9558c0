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
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
from lxml import etree

from creditlake.readers._batches import dicts_batch
from creditlake.readers.base import ReaderError, ReaderOptions, register

SNIFF_ELEMENTS = 20_000  # elements inspected to detect the record element


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


def detect_record_element(path: Path, name: str | None = None) -> tuple[str, int]:
    """(local name, depth below the root) of the record element (see module docstring).

    With `name` given, only its depth is looked up (its shallowest occurrence)."""
    counts: dict[tuple[str, ...], int] = {}
    recordish: set[tuple[str, ...]] = set()
    stack: list[str] = []
    seen = 0
    try:
        for event, el in etree.iterparse(str(path), events=("start", "end"), huge_tree=True):
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
        if not counts:
            raise ReaderError(f"not well-formed XML (line {exc.lineno}): {exc.msg}") from None
    if name is not None:
        depths = [len(k) - 1 for k in counts if k[-1] == name]
        return name, (min(depths) if depths else -1)
    cands = sorted(recordish, key=lambda k: (len(k), -(counts[k] >= 2), -counts[k]))
    repeating = [k for k in cands if counts[k] >= 2]
    pick = repeating[0] if repeating else (cands[0] if cands else None)
    if pick is None:
        raise ReaderError("no record element found: the XML root has no child elements "
                          "with attributes or children (set record_element in the mapping)")
    return pick[-1], len(pick) - 1


def _flatten(el: etree._Element, prefix: str, out: dict[str, str]) -> None:
    for k, v in el.attrib.items():
        _put(out, prefix + _local(k), v)
    for child in el:
        tag = child.tag
        if not isinstance(tag, str):  # comments, processing instructions
            continue
        name = prefix + _local(tag)
        if len(child):
            _flatten(child, name + ".", out)
        elif child.attrib:
            _flatten_leaf_with_attrs(child, name, out)
        else:
            _put(out, name, child.text or "")


def _flatten_leaf_with_attrs(el: etree._Element, name: str, out: dict[str, str]) -> None:
    for k, v in el.attrib.items():
        _put(out, f"{name}.{_local(k)}", v)
    if el.text and el.text.strip():
        _put(out, name, el.text)


def _put(out: dict[str, str], key: str, value: str) -> None:
    if key not in out:
        out[key] = value
        return
    i = 2
    while f"{key}[{i}]" in out:
        i += 1
    out[f"{key}[{i}]"] = value


def _depth(el: etree._Element) -> int:
    d = 0
    p = el.getparent()
    while p is not None:
        d += 1
        p = p.getparent()
    return d


@register("xml")
def read(path: Path, opts: ReaderOptions) -> Iterator[pa.RecordBatch]:
    path = Path(path)
    record, depth = detect_record_element(path, opts.record_element)
    columns: dict[str, None] = {}  # ordered set of column names seen so far
    rows: list[dict[str, str]] = []
    first = 1
    n = 0
    ctx = etree.iterparse(str(path), events=("end",), tag=f"{{*}}{record}", huge_tree=True)
    try:
        for _, el in ctx:
            if depth >= 0 and _depth(el) != depth:
                continue  # same name nested inside a record: part of that record
            row: dict[str, str] = {}
            _flatten(el, "", row)
            if not row and el.text and el.text.strip():
                row[record] = el.text  # a list of scalar records: <emails><email>…</email>
            for k in row:
                if k not in columns:
                    columns[k] = None
            rows.append(row)
            n += 1
            # free the parsed record and the already-processed siblings before it
            el.clear(keep_tail=False)
            parent = el.getparent()
            if parent is not None:
                while el.getprevious() is not None:
                    del parent[0]
            if len(rows) >= opts.batch_rows:
                yield dicts_batch(list(columns), rows, first)
                first += len(rows)
                rows = []
    except etree.XMLSyntaxError as exc:
        if rows:
            yield dicts_batch(list(columns), rows, first)
        raise ReaderError(
            f"XML is truncated or malformed at line {exc.lineno}: {exc.msg} "
            f"({n} records before it were read)"
        ) from None
    if rows or n == 0:
        if n == 0:
            raise ReaderError(f"no <{record}> elements found in the XML document")
        yield dicts_batch(list(columns), rows, first)
