"""The demo's sample writers produce files the readers read back value for value."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from creditlake import readers
from creditlake.readers import ReaderOptions, subsource_of
from creditlake.readers._batches import notice_of
from creditlake.samples_formats import (
    write_csv,
    write_sql_dump,
    write_xlsx,
    write_xml,
    write_zip,
    xml_name,
)

ROWS = [
    {"E-Mail Address": "ann@example.com", "Full Name": "Ann \"A\" O'Neil; Jr.",
     "Phone #": "+49 30 1234567", "Signup Date": dt.date(2021, 3, 4), "Notes": "line1\nline2"},
    {"E-Mail Address": "zoe@example.com", "Full Name": "Zoë 日本", "Phone #": None,
     "Signup Date": dt.date(1999, 12, 31), "Notes": "back\\slash"},
]


def as_text(v: object) -> str | None:
    return None if v is None else v.isoformat() if isinstance(v, dt.date) else str(v)


def read_rows(path: Path) -> tuple[str, list[dict]]:
    fmt = readers.detect(path)
    rows = [r for b in readers.get_reader(fmt)(path, ReaderOptions())
            if not notice_of(b) for r in b.to_pylist()]
    return fmt, rows


@pytest.mark.parametrize(("writer", "fmt", "key"), [
    (write_sql_dump, "sql", lambda c: c),
    (write_xlsx, "excel", lambda c: c),
    (write_xml, "xml", xml_name),
    (write_csv, "csv", lambda c: c),
])
def test_round_trip(tmp_path: Path, writer, fmt: str, key) -> None:
    p = writer(ROWS, tmp_path / f"sample.{fmt}")
    got_fmt, rows = read_rows(p)
    assert got_fmt == fmt
    assert len(rows) == 2
    for want, got in zip(ROWS, rows, strict=True):
        for col, v in want.items():
            value = got.get(key(col))
            if fmt in ("xml", "csv", "excel") and v is None:
                assert value in (None, "")  # absent element / empty cell
            else:
                assert value == as_text(v), (fmt, col)


def test_zip_bundle_and_wrong_extensions(tmp_path: Path) -> None:
    p = write_zip(ROWS * 3, tmp_path / "bundle.zip", formats=("csv", "xml", "sql"))
    fmt, rows = read_rows(p)
    assert fmt == "archive" and len(rows) == 6
    # content decides, not the name
    for writer, want in ((write_xml, "xml"), (write_sql_dump, "sql"), (write_xlsx, "excel")):
        src = writer(ROWS, tmp_path / f"x.{want}")
        wrong = tmp_path / f"misnamed_{want}.csv"
        shutil.copy(src, wrong)
        assert readers.detect(wrong) == want


def test_sql_sample_has_a_skipped_non_person_table(tmp_path: Path) -> None:
    p = write_sql_dump(ROWS, tmp_path / "d.sql")
    subs = [(subsource_of(b), notice_of(b)) for b in readers.get_reader("sql")(p, ReaderOptions())]
    assert subs[0] == ("d.sql#contacts", None)
    assert subs[1][0] == "d.sql#orders" and "skipped" in (subs[1][1] or "")


def test_write_every_format(tmp_path: Path) -> None:
    from creditlake.samples_formats import write_every_format

    data = [{**ROWS[i % 2], "E-Mail Address": f"u{i}@x.com"} for i in range(25)]
    paths = write_every_format(data, tmp_path / "landing")
    formats = [readers.detect(p) for p in paths]
    assert formats == ["xml", "sql", "excel", "archive", "xml"]
    total = sum(len(read_rows(p)[1]) for p in paths)
    assert total == 25
