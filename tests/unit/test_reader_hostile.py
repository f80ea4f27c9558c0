"""Hostile containers, with fixtures built here: nested bombs refused by their cumulative
expansion, detection by content rather than member paths, deep/wide JSON records rejected by
the pre-scan (no parser sees them)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from creditlake import readers
from creditlake.config import ReadLimits
from creditlake.readers import ReaderOptions, ReaderRejects, limits
from creditlake.readers import archive as arc
from creditlake.readers._batches import notice_of


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method, compresslevel=9) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_nested_zips_refused_by_their_cumulative_ratio(tmp_path: Path) -> None:
    # each member is under the per-member ratio floor (16 MiB): alone, every level passes
    member = b"email\n" + b"0" * (4 << 20) + b"\n"
    inner = _zip({f"part{i}.csv": member for i in range(12)})  # ~50 MB from a few dozen KB
    outer = tmp_path / "outer.zip"
    outer.write_bytes(_zip({"a.zip": inner, "b.zip": inner}, zipfile.ZIP_STORED))
    expands = 2 * 12 * len(member) / outer.stat().st_size
    assert expands > 4 * arc.MAX_RATIO  # ~1000:1, like the reported bomb
    assert readers.detect(outer) == "archive"
    notices, rows = [], 0
    with pytest.raises(readers.ReaderError, match="rejected"):
        for b in arc.read(outer, ReaderOptions(), rejects=ReaderRejects()):
            if notice_of(b):
                notices.append(notice_of(b))
            rows += b.num_rows
    assert any("across its nested" in n for n in notices), notices
    # refused part-way: what was extracted stays under MAX_RATIO x the file on disk
    assert rows * len(member) <= arc.MAX_RATIO * outer.stat().st_size + 2 * arc.RATIO_FLOOR_BYTES


def test_zip_of_csvs_under_xl_is_an_archive_not_a_workbook(tmp_path: Path) -> None:
    rows = "email,name\n" + "".join(f"p{i}@x.org,P {i}\n" for i in range(20))
    p = tmp_path / "export.zip"
    p.write_bytes(_zip({"xl/people.csv": rows.encode(), "xl/more/other.csv": b"email\n"}))
    assert readers.detect(p) == "archive"
    got = sum(b.num_rows for b in arc.read(p, ReaderOptions()) if not notice_of(b))
    assert got == 20


def test_real_workbook_still_a_workbook(tmp_path: Path) -> None:
    from creditlake.samples_formats import write_xlsx

    p = write_xlsx([{"email": "a@x.org"}], tmp_path / "book.xlsx")
    assert readers.detect(p) == "excel"


def test_prescan_flags_only_real_violations() -> None:
    lim = ReadLimits(max_depth=3, max_record_bytes=200, max_fields=5)
    lines = [b'{"a": {"b": {"c": 1}}}',          # depth 3: fine
             b'{"a": "[[[[[[[[[[{{{{{{"}',        # brackets inside a string: fine
             b'{"a": {"b": {"c": {"d": 1}}}}',   # depth 4
             b'{"s": "' + b"x" * 300 + b'"}',     # too long
             b'{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}',  # 6 fields
             b'{"t": "a:b:c:d:e:f:g"}']           # colons in a string: fine
    flagged = limits.flag_lines(lines, lim)
    assert sorted(flagged) == [2, 3, 4]
    assert "4 levels" in flagged[2] and "bytes" in flagged[3] and "6 fields" in flagged[4]
    assert limits.naive_max_depth(b"[" * 10 + b"]" * 10) == 10
    assert limits.array_elements(b' [ {"a": "],"}, {"b": [1, 2]} ] ') == [(2, 14), (15, 30)]


def _csv_lines(n: int) -> list[str]:
    return ["email,name,city"] + [f"p{i}@x.org,Name {i},City {i}" for i in range(1, n + 1)]


@pytest.mark.parametrize("compress", [None, "gz"])
def test_unbalanced_quote_is_cut_at_its_line_and_reading_resumes(tmp_path: Path, compress):
    import gzip

    lines = _csv_lines(500)
    lines[101] = 'p101@x.org,"Name 101,City 101'  # physical line 102
    lines[300] = 'p300@x.org,"Multi\nline",City'   # a legitimate multi-line field
    data = ("\n".join(lines) + "\n").encode()
    p = tmp_path / ("q.csv" + (".gz" if compress else ""))
    p.write_bytes(gzip.compress(data) if compress else data)
    assert readers.detect(p) == "csv"
    rej = ReaderRejects()
    got = [r for b in readers.get_reader("csv")(p, ReaderOptions(), rejects=rej)
           for r in b.to_pylist()]
    assert len(got) == 499 and len(rej.rows) == 1
    (line, raw, reason), = rej.rows
    assert line == 102 and raw == 'p101@x.org,"Name 101,City 101'
    assert "reading resumes at line 103" in reason
    assert {"email": "p300@x.org", "name": "Multi\nline"}.items() <= next(
        r for r in got if r["email"] == "p300@x.org").items()
    assert got[-1]["email"] == "p500@x.org"


def test_quote_never_closed_near_the_end(tmp_path: Path) -> None:
    lines = _csv_lines(50)
    lines[45] = 'p45@x.org,"Name 45,City'
    p = tmp_path / "end.csv"
    p.write_text("\n".join(lines) + "\n")
    rej = ReaderRejects()
    n = sum(b.num_rows for b in readers.get_reader("csv")(p, ReaderOptions(), rejects=rej))
    assert n == 49 and [r[0] for r in rej.rows] == [46]
    assert "never closed" in rej.rows[0][2]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "xml", "sql"])
def test_truncated_gzip_keeps_records_before_the_cut(tmp_path: Path, fmt: str) -> None:
    import gzip

    from creditlake import samples
    from creditlake.samples_formats import write_sql_dump, write_xml

    n = 4000
    people = samples.people(n, seed=5, invalid_rate=0, duplicate_rate=0)
    dst = tmp_path / f"p.{fmt}"
    src = (write_xml(people.rows(named=True), dst) if fmt == "xml" else
           write_sql_dump(people.rows(named=True), dst) if fmt == "sql" else
           samples.write(people, dst, fmt))
    blob = gzip.compress(src.read_bytes())
    p = tmp_path / f"cut.{fmt}.gz"
    p.write_bytes(blob[: int(len(blob) * 0.6)])
    fmt_found = readers.detect(p)
    rows = 0
    with pytest.raises(readers.ReaderError, match="truncated|unexpectedly|corrupt"):
        reader = readers.get_reader(fmt_found)
        extra = {} if fmt == "xml" else {"rejects": ReaderRejects()}  # xml has no channel
        for b in reader(p, ReaderOptions(), **extra):
            rows += b.num_rows
    assert rows > n * 0.4, (fmt, fmt_found, rows)


def test_truncated_csv_rejects_the_half_record(tmp_path: Path) -> None:
    import gzip

    blob = gzip.compress(("email,name\n" + "".join(f"g{i}@x.org,G {i}\n" for i in range(3000)))
                         .encode())
    p = tmp_path / "cut.csv.gz"
    p.write_bytes(blob[: len(blob) * 6 // 10])
    assert readers.detect(p) == "csv"  # a small cut .gz still has a head
    rej = ReaderRejects()
    got = []
    with pytest.raises(readers.ReaderError, match="records before the cut were kept"):
        for b in readers.get_reader("csv")(p, ReaderOptions(), rejects=rej):
            got += b.column("email").to_pylist()
    assert got == [f"g{i}@x.org" for i in range(len(got))] and len(got) > 1000
    (row, raw, reason), = rej.rows
    assert row == len(got) + 1 and f"g{len(got)}@x" in raw and "cut off" in reason


def test_xml_too_deep_in_its_first_record_still_finds_the_records(tmp_path: Path) -> None:
    """The record element is found although the parser stops on depth inside the first one
    (no record has ended yet): the deep record is rejected, the next one read."""
    p = tmp_path / "first_deep.xml"
    p.write_text('<people><person><email>a@x.org</email>' + "<n>" * 50_000 + "x"
                 + "</n>" * 50_000 + "</person><person><email>b@x.org</email></person></people>")
    rej = ReaderRejects()
    rows = [r for b in readers.get_reader("xml")(p, ReaderOptions(), rejects=rej)
            for r in b.to_pylist()]
    assert [r["email"] for r in rows] == ["b@x.org"]
    assert [r[0] for r in rej.rows] == [1] and "levels deep" in rej.rows[0][2]


@pytest.mark.parametrize("levels", [3_000, 30_000])
def test_xml_beyond_the_parser_depth_keeps_the_records_after(tmp_path: Path, levels) -> None:
    import gzip

    recs = "".join(f"<contact><email>p{i}@x.org</email></contact>" for i in range(5))
    deep = ('<contact><email>d@x.org</email><x note="a>b">' + "<a>" * levels + "t"
            + "</a>" * levels + "</x></contact>")
    doc = f'<?xml version="1.0"?><contacts>{recs}{deep}{recs.replace("p", "q")}</contacts>'
    for p in (tmp_path / "deep.xml", tmp_path / "deep.xml.gz"):
        p.write_bytes(gzip.compress(doc.encode()) if p.suffix == ".gz" else doc.encode())
        assert readers.detect(p) == "xml"
        rej = ReaderRejects()
        rows = [r for b in readers.get_reader("xml")(p, ReaderOptions(), rejects=rej)
                for r in b.to_pylist()]
        assert [r["source_row"] for r in rows] == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11]
        assert rows[-1]["email"] == "q4@x.org"
        assert not any(k.endswith("creditlake_too_deep") for r in rows for k in r)
        assert [r[0] for r in rej.rows] == [6] and "levels deep" in rej.rows[0][2]
