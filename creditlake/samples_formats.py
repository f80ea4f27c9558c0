"""Sample writers for the demo and tests: the same contact rows as XML, a MySQL dump, an .xlsx
workbook and a .zip bundle. Rows are dicts with the source's own (messy) column names, e.g.
{"E-Mail Address": ..., "Full Name": ..., "Phone #": ...}; None means NULL / empty cell.

XML goes through lxml's serializer (incremental xmlfile writer), the workbook through
xlsxwriter (a dev dependency: imported lazily), the dump mimics mysqldump's escaping.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from lxml import etree

_XML_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def _columns(rows: Sequence[dict]) -> list[str]:
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    return list(cols)


def xml_name(col: str) -> str:
    """A column name as an XML element name ("E-Mail Address" -> "E-Mail_Address")."""
    name = _XML_NAME.sub("_", col.strip()).strip("_") or "field"
    return name if re.match(r"[A-Za-z_]", name) else f"_{name}"


def write_xml(rows: Sequence[dict], path: Path, root: str = "contacts", record: str = "contact",
              attributes: Iterable[str] = ()) -> Path:
    """<contacts><contact id="…"><Full_Name>…</Full_Name>…</contact>…</contacts>; keys named in
    `attributes` become attributes of the record element; None values are left out."""
    attrs = set(attributes)
    path = Path(path)
    with etree.xmlfile(str(path), encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element(root):
            for r in rows:
                el = etree.Element(record, {xml_name(k): str(v) for k, v in r.items()
                                            if k in attrs and v is not None})
                for k, v in r.items():
                    if k not in attrs and v is not None:
                        etree.SubElement(el, xml_name(k)).text = str(v)
                xf.write(el)
    return path


_MY_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r",
                             "\x00": "\\0", "\x1a": "\\Z"})


def sql_literal(v: object) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int | float):
        return repr(v)
    return "'" + str(v).translate(_MY_ESCAPES) + "'"


def write_sql_dump(rows: Sequence[dict], path: Path, table: str = "contacts",
                   rows_per_insert: int = 500, extra_tables: bool = True) -> Path:
    """A mysqldump-style file: banner, CREATE TABLE, LOCK/UNLOCK, multi-row INSERTs without a
    column list (names come from CREATE TABLE), plus a small non-person table that readers
    must report and skip."""
    cols = _columns(rows)
    path = Path(path)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("-- MySQL dump 10.13  Distrib 8.0 (creditlake sample)\n--\n"
                "/*!40101 SET NAMES utf8mb4 */;\n\n")
        _write_table(f, table, cols, [[r.get(c) for c in cols] for r in rows], rows_per_insert)
        if extra_tables:
            _write_table(f, "orders", ["order_id", "total", "currency"],
                         [[1, 9.99, "EUR"], [2, 120.5, "USD"]], rows_per_insert)
        f.write("-- Dump completed\n")
    return path


def _write_table(f: io.TextIOBase, table: str, cols: list[str], rows: list[list],
                 per_insert: int) -> None:
    f.write(f"DROP TABLE IF EXISTS `{table}`;\nCREATE TABLE `{table}` (\n")
    f.write(",\n".join(f"  `{c}` text DEFAULT NULL" for c in cols))
    f.write("\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n\n")
    f.write(f"LOCK TABLES `{table}` WRITE;\n")
    for i in range(0, len(rows), per_insert):
        tuples = ",".join("(" + ",".join(sql_literal(v) for v in r) + ")"
                          for r in rows[i:i + per_insert])
        f.write(f"INSERT INTO `{table}` VALUES {tuples};\n")
    f.write("UNLOCK TABLES;\n\n")


def write_xlsx(rows: Sequence[dict], path: Path, sheet: str = "Contacts",
               title: str | None = "Contacts export") -> Path:
    """A workbook with an optional title row and a blank row above the header (so header
    detection is exercised); dates are written as real Excel dates."""
    import datetime as dt

    import xlsxwriter

    cols = _columns(rows)
    path = Path(path)
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet(sheet)
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    r0 = 0
    if title:
        ws.write(0, 0, title)
        r0 = 2
    ws.write_row(r0, 0, cols)
    for i, row in enumerate(rows, start=r0 + 1):
        for j, c in enumerate(cols):
            v = row.get(c)
            if v is None:
                continue
            if isinstance(v, dt.date):
                ws.write_datetime(i, j, dt.datetime.combine(v, dt.time()) if
                                  not isinstance(v, dt.datetime) else v, date_fmt)
            else:
                ws.write(i, j, v)
    wb.close()
    return path


def write_csv(rows: Sequence[dict], path: Path) -> Path:
    cols = _columns(rows)
    path = Path(path)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        w.writerows([["" if r.get(c) is None else r.get(c) for c in cols] for r in rows])
    return path


def write_zip(rows: Sequence[dict], path: Path, formats: Sequence[str] = ("csv", "xml", "sql"),
              tmp_dir: Path | None = None) -> Path:
    """A .zip bundle with the rows split across one member per format
    (contacts_1.csv, contacts_2.xml, contacts_3.sql, ...)."""
    import tempfile

    path = Path(path)
    writers = {"csv": write_csv, "xml": write_xml, "sql": write_sql_dump, "xlsx": write_xlsx}
    parts = [rows[i::len(formats)] for i in range(len(formats))]
    with tempfile.TemporaryDirectory(dir=tmp_dir) as td, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, (fmt, part) in enumerate(zip(formats, parts, strict=True), start=1):
            member = Path(td) / f"contacts_{i}.{fmt}"
            writers[fmt](part, member)
            zf.write(member, member.name)
    return path


def write_every_format(rows: Sequence[dict], directory: Path, stem: str = "contacts"
                       ) -> list[Path]:
    """The rows split over one file per format of issue 6 (XML, MySQL dump, .xlsx, a .zip
    of CSV+XML+SQL, and a gzipped XML), for the demo's landing directory."""
    import gzip
    import shutil

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    parts = [rows[i::5] for i in range(5)]
    out = [write_xml(parts[0], directory / f"{stem}.xml"),
           write_sql_dump(parts[1], directory / f"{stem}.sql"),
           write_xlsx(parts[2], directory / f"{stem}.xlsx"),
           write_zip(parts[3], directory / f"{stem}_bundle.zip")]
    plain = write_xml(parts[4], directory / f"{stem}_gz.xml")
    gz = directory / f"{stem}_gz.xml.gz"
    with open(plain, "rb") as f, gzip.open(gz, "wb") as g:
        shutil.copyfileobj(f, g)
    plain.unlink()
    return [*out, gz]


# ------------------------------------------------------- large synthetic files (bench, tests)

def _big_rows(start: int, n: int) -> list[tuple[int, str, str, str, str]]:
    return [(i, f"user{i}@example.com", f"Person O'Name {i}", f"+49 30 {i:08d}",
             f"Street {i % 997}\\n2nd line; \"x\"") for i in range(start, start + n)]


def write_big_xml(path: Path, n_rows: int, block: int = 10_000) -> Path:
    """n_rows <person> records, written in blocks by string formatting (fast, still valid XML;
    the small fixtures use the lxml serializer above)."""
    path = Path(path)
    with open(path, "w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<export xmlns="urn:creditlake:test">\n')
        for s in range(0, n_rows, block):
            f.write("".join(
                f'<person id="{i}"><email>{e}</email><name>{nm.replace(chr(39), "&apos;")}</name>'
                f"<phone>{p}</phone><address><street>{a.replace(chr(34), '&quot;')}</street>"
                f"<city>Berlin</city></address></person>\n"
                for i, e, nm, p, a in _big_rows(s, min(block, n_rows - s))))
        f.write("</export>\n")
    return path


def write_big_sql_dump(path: Path, n_rows: int, dialect: str = "mysql",
                       per_insert: int = 1000) -> Path:
    """mysqldump-style multi-row INSERTs, or a pg_dump-style COPY block, of n_rows people."""
    path = Path(path)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        if dialect == "mysql":
            f.write("-- MySQL dump 10.13\n/*!40101 SET NAMES utf8mb4 */;\n"
                    "CREATE TABLE `people` (\n  `id` int NOT NULL,\n  `email` varchar(255),\n"
                    "  `full_name` text,\n  `phone` varchar(40),\n  `address` text,\n"
                    "  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\nLOCK TABLES `people` WRITE;\n")
            for s in range(0, n_rows, per_insert):
                f.write("INSERT INTO `people` VALUES " + ",".join(
                    f"({i},'{e}','{nm.replace(chr(39), chr(92) + chr(39))}','{p}',"
                    f"'{a.replace(chr(34), chr(92) + chr(34))}')"
                    for i, e, nm, p, a in _big_rows(s, min(per_insert, n_rows - s))) + ";\n")
            f.write("UNLOCK TABLES;\n")
        else:
            f.write("-- PostgreSQL database dump\nSET standard_conforming_strings = on;\n"
                    "CREATE TABLE public.people (\n    id integer NOT NULL,\n    email text,\n"
                    "    full_name text,\n    phone text,\n    address text\n);\n"
                    "COPY public.people (id, email, full_name, phone, address) FROM stdin;\n")
            for s in range(0, n_rows, 10_000):
                f.write("".join(f"{i}\t{e}\t{nm}\t{p}\t{a.replace(chr(92), chr(92) * 2)}\n"
                                for i, e, nm, p, a in _big_rows(s, min(10_000, n_rows - s))))
            f.write("\\.\n\n")
    return path
