"""Streaming .xlsx sheet rows with lxml.iterparse, for sheets too large for calamine's
in-memory range. Produces the same Python cell values calamine does (str, float, bool,
date/datetime, "" for empty) so the Excel reader treats both sources alike.

Memory: the shared-strings table (unique strings of the workbook) plus one row at a time.
Not supported in this path: merged-cell filling (mergeCells sit after the data in the sheet
XML) and the 1904 date system.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from lxml import etree

_EPOCH = dt.datetime(1899, 12, 30)
_BUILTIN_DATE_FORMATS = {*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59)}
_REF = re.compile(r"([A-Z]+)(\d+)")
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\s+ref=\"([A-Z]+)(\d+)")
_QUOTED = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.')
SWEEP = 1024


def _col_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def is_date_format(num_fmt_id: int, code: str | None) -> bool:
    if num_fmt_id in _BUILTIN_DATE_FORMATS:
        return True
    if not code:
        return False
    return bool(re.search(r"[dmyhs]", _QUOTED.sub("", code), re.I))


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


class XlsxStream:
    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.parts = self._sheet_parts()
        self._strings: list[str] | None = None
        self._date_styles: list[bool] | None = None

    @classmethod
    def open(cls, path: Path) -> XlsxStream | None:
        """None unless the file is an OOXML workbook (zip with xl/workbook.xml)."""
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError):
            return None
        try:
            return cls(zf)
        except (KeyError, etree.XMLSyntaxError):
            zf.close()
            return None

    def close(self) -> None:
        self.zf.close()

    def _sheet_parts(self) -> dict[str, str]:
        book = etree.fromstring(self.zf.read("xl/workbook.xml"))
        rels = etree.fromstring(self.zf.read("xl/_rels/workbook.xml.rels"))
        targets = {r.get("Id"): r.get("Target", "") for r in rels}
        parts = {}
        for sh in book.iter("{*}sheet"):
            rid = next((v for k, v in sh.items() if _local(k) == "id"), None)
            target = targets.get(rid, "")
            path = target.lstrip("/") if target.startswith("/") else str(
                PurePosixPath("xl") / target)
            parts[sh.get("name", "")] = path
        return parts

    def sheet_bytes(self, name: str) -> int:
        try:
            return self.zf.getinfo(self.parts[name]).file_size
        except KeyError:
            return 0

    def strings(self) -> list[str]:
        if self._strings is None:
            self._strings = []
            if "xl/sharedStrings.xml" in self.zf.namelist():
                with self.zf.open("xl/sharedStrings.xml") as f:
                    for _, si in etree.iterparse(f, events=("end",), tag="{*}si",
                                                 huge_tree=True, resolve_entities=False):
                        # plain <t>, or rich-text runs <r><t>; phonetic <rPh> runs are not text
                        self._strings.append("".join(
                            t.text or "" for t in si.iter("{*}t")
                            if _local(t.getparent().tag) != "rPh"))
                        si.clear()
        return self._strings

    def date_styles(self) -> list[bool]:
        if self._date_styles is None:
            self._date_styles = []
            if "xl/styles.xml" in self.zf.namelist():
                root = etree.fromstring(self.zf.read("xl/styles.xml"))
                codes = {int(f.get("numFmtId", "0")): f.get("formatCode")
                         for f in root.iter("{*}numFmt")}
                xfs = next(root.iter("{*}cellXfs"), None)
                for xf in (xfs if xfs is not None else []):
                    fid = int(xf.get("numFmtId", "0"))
                    self._date_styles.append(is_date_format(fid, codes.get(fid)))
        return self._date_styles

    def rows(self, name: str) -> tuple[int, int, Iterator[list]]:
        """(first row index, first column index, rows) like calamine's sheet.start/iter_rows;
        rows are contiguous from the first row (blank rows are empty lists)."""
        part = self.parts[name]
        with self.zf.open(part) as f:
            m = _DIMENSION.search(f.read(1 << 16))
        r0 = int(m.group(2)) - 1 if m else 0
        c0 = _col_index(m.group(1).decode()) if m else 0
        return r0, c0, self._iter_rows(part, r0, c0)

    def _iter_rows(self, part: str, r0: int, c0: int) -> Iterator[list]:
        strings, dates = self.strings(), self.date_styles()
        expected = r0
        n = 0
        with self.zf.open(part) as f:
            for _, row in etree.iterparse(f, events=("end",), tag="{*}row", huge_tree=True,
                                          resolve_entities=False):
                r = row.get("r")
                index = int(r) - 1 if r else expected
                while expected < index:  # rows without cells
                    yield []
                    expected += 1
                cells: list = []
                for c in row:
                    ref = c.get("r")
                    col = _col_index(_REF.match(ref).group(1)) - c0 if ref else len(cells)
                    if col < 0:
                        continue
                    if col > len(cells):
                        cells.extend([""] * (col - len(cells)))
                    cells.append(self._value(c, strings, dates))
                yield cells
                expected = index + 1
                row.clear()
                n += 1
                if n % SWEEP == 0 and (parent := row.getparent()) is not None:
                    del parent[: parent.index(row)]

    @staticmethod
    def _value(c: etree._Element, strings: list[str], dates: list[bool]) -> object:
        t = c.get("t", "n")
        v = None
        inline = None
        for ch in c:
            tag = _local(ch.tag) if isinstance(ch.tag, str) else ""
            if tag == "v":
                v = ch.text
            elif tag == "is":
                inline = "".join(x.text or "" for x in ch.iter("{*}t"))
        if t == "inlineStr":
            return inline or ""
        if v is None:
            return ""
        if t == "s":
            return strings[int(v)]
        if t == "b":
            return v == "1"
        if t in ("str", "e", "d"):
            return v
        num = float(v)
        s = c.get("s")
        if s is not None and int(s) < len(dates) and dates[int(s)]:
            d = _EPOCH + dt.timedelta(milliseconds=round(num * 86_400_000))
            return d.date() if d.time() == dt.time() else d
        return num
