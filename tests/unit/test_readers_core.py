"""CSV / JSON / JSONL / Parquet readers and content detection, including the ugly cases."""

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from creditlake import readers
from creditlake.readers import ReaderError, ReaderOptions, ReaderRejects, detect, get_reader
from creditlake.readers._batches import notice_of


def read_all(path: Path, fmt: str | None = None, **opts) -> tuple[list[dict], ReaderRejects]:
    fmt = fmt or detect(path)
    rejects = ReaderRejects()
    reader = get_reader(fmt)
    try:
        batches = list(reader(path, ReaderOptions(**opts), rejects=rejects))
    except TypeError:
        batches = list(reader(path, ReaderOptions(**opts)))
    rows = [r for b in batches for r in b.to_pylist()]
    return rows, rejects


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def test_csv_everything_is_text_and_rows_are_numbered(tmp_path):
    p = write(tmp_path, "a.csv", "id,zip,email\n007,01234,a@b.co\n8,,c@d.co\n")
    rows, _ = read_all(p)
    assert rows == [{"id": "007", "zip": "01234", "email": "a@b.co", "source_row": 1},
                    {"id": "8", "zip": None, "email": "c@d.co", "source_row": 2}]


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_csv_delimiter_sniffed(tmp_path, sep):
    p = write(tmp_path, "a.txt", f"name{sep}email\nAnn, Lee{sep}a@b.co\n")
    rows, _ = read_all(p)
    assert rows[0]["name"] == "Ann, Lee" and rows[0]["email"] == "a@b.co"


def test_csv_utf8_bom_and_latin1_and_utf16(tmp_path):
    bom = write(tmp_path, "bom.csv", "\ufeffname,email\nZoë,z@x.co\n".encode("utf-8-sig"))
    latin = write(tmp_path, "latin.csv", "name,email\nJosé Müller,j@x.co\n".encode("latin-1"))
    u16 = write(tmp_path, "u16.csv", "name,email\nSøren,s@x.co\n".encode("utf-16"))
    assert read_all(bom)[0][0]["name"] == "Zoë"
    assert "name" in read_all(bom)[0][0]  # BOM not glued to the first header
    assert read_all(latin)[0][0]["name"] == "José Müller"
    assert read_all(u16)[0][0]["name"] == "Søren"


def test_csv_nul_padding_is_dropped_not_quarantined(tmp_path):
    """Fixed-width exports pad fields with NUL bytes: the file is a CSV (not 'binary'), the
    NULs are dropped wherever they are (the head, deep in the file, a stray Latin-1 byte
    beside them) and the file's notice counts them."""
    rows = "".join(f"p{i}@x.co,Person {i}\x00\x00\x00\x00,US\x00\x00\n" for i in range(3000))
    data = ("email\x00,name,country\n" + rows).encode() + "r@x.co,Ren\xe9e\x00,FR\n".encode(
        "latin-1") + b"z@x.co,Zo\xc3\xab,DE\x00\n"
    p = write(tmp_path, "padded.csv", data)
    assert detect(p) == "csv"
    batches = list(get_reader("csv")(p, ReaderOptions(), rejects=ReaderRejects()))
    got = [r for b in batches for r in b.to_pylist()]
    assert len(got) == 3002
    assert got[0] == {"email": "p0@x.co", "name": "Person 0", "country": "US", "source_row": 1}
    assert [r["name"] for r in got[-2:]] == ["Renée", "Zoë"]
    assert not any("\x00" in str(v) for r in got for v in r.values())
    notices = [n for b in batches if (n := notice_of(b))]
    assert notices == [f"{3000 * 6 + 3} NUL bytes removed (padding: NUL is never text)"]


def test_csv_nul_padding_with_a_bom_and_utf16_without_one(tmp_path):
    """NUL padding is dropped in a UTF-8 file with a BOM too; a UTF-16 file without a BOM
    (NUL in every other byte) is read as UTF-16, not stripped into garbage."""
    bom = write(tmp_path, "bom.csv", "\ufeffemail,name\na@x.co,Ann\x00\x00\n".encode("utf-8-sig"))
    assert detect(bom) == "csv"
    assert read_all(bom)[0] == [{"email": "a@x.co", "name": "Ann", "source_row": 1}]
    for enc in ("utf-16-le", "utf-16-be"):
        p = write(tmp_path, f"{enc}.csv", "email,name\nl@x.co,Łucja Müller\n".encode(enc))
        assert detect(p) == "csv", enc
        assert read_all(p)[0][0]["name"] == "Łucja Müller", enc


def test_bytes_that_are_not_text_in_the_encoding_cost_a_character_not_the_file(tmp_path):
    """A UTF-16 file cut at an odd byte or holding a lone surrogate, a cp1252 file with one of
    its unmapped bytes: each bad byte becomes U+FFFD, every row is read and a notice counts
    the bytes (a strict decoder used to fail the whole file)."""
    rows = "email,name\na@x.co,Ann\nb@x.co,Bob\n"
    body = rows.encode("utf-16-le")
    bob = body.index("Bob".encode("utf-16-le"))
    cases = {
        "odd.csv": (b"\xff\xfe" + body + b"A", {}, "1 byte not utf-16 text"),
        "no-bom-odd.csv": (body + b"\x00", {}, "1 byte not utf-16-le text"),
        "surrogate.csv": (b"\xff\xfe" + body[:bob] + b"\x00\xd8" + body[bob:], {},
                          "2 bytes not utf-16 text"),
        "cp1252.csv": (b"email,name\na@x.co,A\x81nn\nb@x.co,Bob\n", {"encoding": "cp1252"},
                       "1 byte not cp1252 text"),
    }
    for name, (data, opts, said) in cases.items():
        p = write(tmp_path, name, data)
        rejects = ReaderRejects()
        batches = list(get_reader("csv")(p, ReaderOptions(**opts), rejects=rejects))
        got = [r["email"] for b in batches for r in b.to_pylist()]
        assert got == ["a@x.co", "b@x.co"], name
        assert [n for b in batches if (n := notice_of(b))] == [f"{said} replaced with U+FFFD"]


def test_a_zero_filled_file_is_quarantined_as_such(tmp_path):
    """All NUL: not UTF-16 (NUL in both halves), and the reason says so without the NULs."""
    fmt, why = readers.detect_format(write(tmp_path, "zeros.csv", b"\x00" * 5000))
    assert fmt == "unrecognized"
    assert why == "no content: only NUL bytes and blanks (a zero-filled file)"


def test_binary_data_with_a_comma_line_is_still_not_a_csv(tmp_path):
    junk = bytes(range(1, 32)) * 2000
    p = write(tmp_path, "blob.csv", b"a,b\n" + junk + b"\x00" * 5000)
    assert readers.detect_format(p)[0] == "unrecognized"


def test_csv_mixed_encoding_deep_in_file_is_repaired_not_fatal(tmp_path):
    body = "name,email\n" + "Ann,a@x.co\n" * 50_000
    data = body.encode() + "Renée,r@x.co\n".encode("latin-1") + "Zoë,z@x.co\n".encode()
    rows, _ = read_all(write(tmp_path, "mixed.csv", data))
    assert len(rows) == 50_002
    assert rows[-2]["name"] == "Renée" and rows[-1]["name"] == "Zoë"


def test_csv_embedded_newlines_and_quotes(tmp_path):
    p = write(tmp_path, "q.csv", 'name,note\n"Ann ""The Hammer"" Lee","line1\nline2"\nBob,x\n')
    rows, _ = read_all(p)
    assert rows[0] == {"name": 'Ann "The Hammer" Lee', "note": "line1\nline2", "source_row": 1}
    assert rows[1]["name"] == "Bob"


def test_csv_ragged_rows_are_rejected_with_line_numbers(tmp_path):
    p = write(tmp_path, "r.csv", "a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n")
    rows, rejects = read_all(p)
    assert [r["a"] for r in rows] == ["1", "10"]
    assert [(line, raw) for line, raw, _ in rejects.rows] == [(3, "4,5"), (4, "6,7,8,9")]
    assert "expected 3 fields, got 2" in rejects.rows[0][2]


def test_csv_header_only_and_empty(tmp_path):
    rows, rejects = read_all(write(tmp_path, "h.csv", "email,name\n"))
    assert rows == [] and rejects.rows == []
    with pytest.raises(ReaderError, match="empty"):
        detect(write(tmp_path, "e.csv", b""))


def test_csv_blocks_are_joined_into_batches_of_about_batch_rows(tmp_path):
    """The parser reads blocks of half a batch (its memory grows with the block); they are
    joined back into batches of 3/4 to 2 x batch_rows, rows numbered in file order."""
    pad = "x" * 90  # ~125 bytes a row: a block of 64 bytes a row holds about half a batch
    body = "email,name\n" + "".join(f"u{i}@example.com,Person {i} {pad}\n" for i in range(20_000))
    p = write(tmp_path, "big.csv", body)
    batches = list(get_reader("csv")(p, ReaderOptions(batch_rows=2_000), rejects=ReaderRejects()))
    sizes = [b.num_rows for b in batches]
    assert sum(sizes) == 20_000
    assert all(1_500 <= n <= 4_000 for n in sizes[:-1]), sizes
    rows = [r for b in batches for r in b.column("source_row").to_pylist()]
    assert rows == list(range(1, 20_001))


def test_csv_blocks_read_before_a_parse_error_are_still_yielded():
    """Joining blocks must not lose the rows parsed before the parser fails."""
    import pyarrow as pa

    from creditlake.readers.csv import _whole_batches

    def parser():
        yield pa.record_batch({"email": ["a@x.co", "b@x.co"]})
        raise pa.ArrowInvalid("straddling object")

    got = []
    with pytest.raises(pa.ArrowInvalid):
        for table in _whole_batches(parser(), 1_000):
            got += table.column("email").to_pylist()
    assert got == ["a@x.co", "b@x.co"]


def test_csv_duplicate_and_blank_headers_keep_every_column(tmp_path):
    rows, _ = read_all(write(tmp_path, "d.csv", "email,,email\na@b.co,x,c@d.co\n"))
    assert rows[0] == {"email": "a@b.co", "column_2": "x", "email_2": "c@d.co", "source_row": 1}


def test_gzip_is_transparent_and_truncated_gzip_is_reported(tmp_path):
    body = ("email,name\n" + "".join(f"u{i}@x.co,N{i}\n" for i in range(20_000))).encode()
    gz = write(tmp_path, "a.csv.gz", gzip.compress(body))
    assert detect(gz) == "csv"
    assert len(read_all(gz)[0]) == 20_000
    cut = write(tmp_path, "cut.csv.gz", gzip.compress(body)[: len(gzip.compress(body)) // 2])
    with pytest.raises(ReaderError, match="truncated|ends unexpectedly"):
        read_all(cut)


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_truncated_gzip_json_keeps_the_records_before_the_cut(tmp_path, fmt):
    recs = [{"email": f"u{i}@x.co", "name": f"N{i}"} for i in range(20_000)]
    body = ("".join(json.dumps(r) + "\n" for r in recs) if fmt == "jsonl"
            else json.dumps(recs)).encode()
    packed = gzip.compress(body)
    cut = write(tmp_path, f"cut.{fmt}.gz", packed[: len(packed) // 2])
    rejects = ReaderRejects()
    got: list[dict] = []
    with pytest.raises(ReaderError, match="input ends unexpectedly after record"):
        for batch in get_reader(fmt)(cut, ReaderOptions(), rejects=rejects):
            got += batch.to_pylist()
    assert 0 < len(got) < len(recs)
    assert [r["email"] for r in got] == [r["email"] for r in recs[: len(got)]]


def test_jsonl_nested_objects_lists_and_bad_lines(tmp_path):
    lines = [json.dumps({"email": "a@b.co", "contact": {"phone": "1", "geo": {"city": "X"}},
                         "tags": ["a", "b"]}),
             "", "{not json", json.dumps([1, 2]), json.dumps({"email": "c@d.co", "age": 4})]
    p = write(tmp_path, "a.jsonl", "\n".join(lines) + "\n")
    assert detect(p) == "jsonl"
    rows, rejects = read_all(p)
    assert rows[0]["contact.phone"] == "1" and rows[0]["contact.geo.city"] == "X"
    assert json.loads(rows[0]["tags"]) == ["a", "b"]
    assert rows[1]["email"] == "c@d.co" and rows[1]["age"] == "4"
    assert [r[0] for r in rejects.rows] == [2, 3]  # blank line is not a record
    assert {r[1] for r in rejects.rows} == {"{not json", "[1, 2]"}


def test_jsonl_stray_latin1_bytes_are_repaired_not_fatal(tmp_path):
    """A line with invalid UTF-8 (cp1252 bytes) is read with them repaired, as in a CSV."""
    p = tmp_path / "l.jsonl"
    p.write_bytes(b'{"email":"a@b.co"}\n{"email":"c@d.co","name":"Ren\xe9"}\n')
    rows, rejects = read_all(p)
    assert [r["name"] for r in rows] == [None, "Ren\u00e9"] and not rejects.rows


def test_jsonl_whose_second_line_is_not_an_object(tmp_path):
    """A bad second line (here a long array) is that line's reject, not a reason to read the
    file as one JSON document and lose every line."""
    lines = [json.dumps({"email": "a@b.co"}), json.dumps(list(range(20_000))),
             json.dumps({"email": "c@d.co"})]
    p = write(tmp_path, "b.jsonl", "\n".join(lines) + "\n")
    assert detect(p) == "jsonl"
    rows, rejects = read_all(p)
    assert [r["email"] for r in rows] == ["a@b.co", "c@d.co"]
    assert [r[0] for r in rejects.rows] == [2]


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_a_field_whose_shape_varies_keeps_every_record(tmp_path, fmt):
    """An object here, a deeper object or a string there: the field becomes JSON text and no
    record is lost, also on the slow paths (a bad line in the batch, a JSON array)."""
    objs = [{"email": "a@x.co", "addr": {"city": "X"}}, {"email": "b@x.co", "addr": {"city": {
        "name": "Y"}}}, {"email": "c@x.co", "addr": "plain"}, {"email": "d@x.co", "n": 1}]
    if fmt == "jsonl":
        p = write(tmp_path, "m.jsonl", "\n".join(map(json.dumps, objs)) + "\n{broken\n")
    else:
        p = write(tmp_path, "m.json", json.dumps(objs))
    rows, rejects = read_all(p, fmt)
    assert [r["email"] for r in rows] == ["a@x.co", "b@x.co", "c@x.co", "d@x.co"]
    assert json.loads(rows[1]["addr"]) == {"city": {"name": "Y"}} and rows[2]["addr"] == "plain"
    assert len(rejects.rows) == (1 if fmt == "jsonl" else 0)


def test_json_in_utf16_or_with_a_bom_is_read_as_text(tmp_path):
    """JSON Lines and a JSON array saved as UTF-16 (BOM or none) or UTF-8 with a BOM: every
    record is read (UTF-16 lines used to be rejected one by one, the document quarantined)."""
    recs = [{"email": f"p{i}@x.co", "name": f"Zoë {i}"} for i in range(3)]
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs)
    for enc in ("utf-16", "utf-16-le", "utf-16-be", "utf-8-sig"):
        for name, text in ((f"{enc}.jsonl", lines), (f"{enc}.json", json.dumps(recs))):
            rows, rejects = read_all(write(tmp_path, name, text.encode(enc)))
            assert [(r["email"], r["name"]) for r in rows] == [
                (r["email"], r["name"]) for r in recs], name
            assert not rejects.rows, name


def test_json_bytes_that_are_not_utf16_text_are_counted_in_a_notice(tmp_path):
    """A UTF-16 JSON file holding a lone surrogate (a broken exporter): the bytes become
    U+FFFD inside the string, every record is read and the file's notice counts them, as
    the CSV reader's does."""
    recs = [{"email": f"p{i}@x.co", "name": f"Zoe{i}"} for i in range(3)]
    for name, text in (("bad.jsonl", "".join(json.dumps(r) + "\n" for r in recs)),
                       ("bad.json", json.dumps(recs))):
        body = text.encode("utf-16-le")
        at = body.index("Zoe1".encode("utf-16-le"))
        p = write(tmp_path, name, b"\xff\xfe" + body[:at] + b"\x00\xd8" + body[at:])
        rejects = ReaderRejects()
        batches = list(get_reader(detect(p))(p, ReaderOptions(), rejects=rejects))
        rows = [r for b in batches for r in b.to_pylist()]
        assert [r["name"] for r in rows] == ["Zoe0", "\ufffdZoe1", "Zoe2"], name
        assert not rejects.rows, name
        assert [n for b in batches if (n := notice_of(b))] == [
            "2 bytes not utf-16 text replaced with U+FFFD"], name


def test_json_nan_and_numbers_past_a_double_are_values_not_rejects(tmp_path):
    """Python's json.dumps writes NaN and Infinity; 1e999 is valid JSON past a double. The
    record loads: NaN is a missing value, the others keep their literal text."""
    data = ('{"email": "n1@x.co", "age": NaN}\n{"email": "n2@x.co", "age": 1e999}\n'
            '{"email": "n3@x.co", "score": -Infinity}\n{"email": "n4@x.co", "age": NaN\n')
    rows, rejects = read_all(write(tmp_path, "nan.jsonl", data))
    assert [(r["email"], r.get("age"), r.get("score")) for r in rows] == [
        ("n1@x.co", None, None), ("n2@x.co", "1e999", None), ("n3@x.co", None, "-Infinity")]
    assert [row for row, _, _ in rejects.rows] == [4]  # still not JSON: rejected
    # a lone surrogate escape, which json accepts and no UTF-8 text holds: that line alone
    sur = write(tmp_path, "sur.jsonl", '{"email": "s@x.co", "s": "\\ud83d"}\nnot json\n'
                                       '{"email": "t@x.co"}\n')
    rows, rejects = read_all(sur)
    assert [r["email"] for r in rows] == ["t@x.co"]
    assert [row for row, _, _ in rejects.rows] == [1, 2]
    doc, _ = read_all(write(tmp_path, "nan.json", '[{"email": "d@x.co", "age": NaN}]'))
    assert doc == [{"email": "d@x.co", "age": None, "source_row": 1}]


def test_csv_lines_ending_in_a_lone_cr(tmp_path):
    """Old Mac "CSV (Macintosh)" exports end lines in \r alone: read (it failed the file),
    with a ragged row's line number counted the same way."""
    p = write(tmp_path, "mac.csv", 'email,name\ra@x.co,Ann\rb@x.co,Bob,extra\r"c@x.co",Cy\r')
    rows, rejects = read_all(p)
    assert [r["email"] for r in rows] == ["a@x.co", "c@x.co"]
    assert [(row, why) for row, _, why in rejects.rows] == [
        (3, "ragged row at line 3: expected 2 fields, got 3")]
    # a quote that never closes is caught as in a file of \n lines: its line is rejected
    body = "".join(f"P{i},p{i}@x.co\r" for i in range(200))
    rows, rejects = read_all(write(tmp_path, "run.csv", 'name,email\rAnn,"a@x.co\r' + body))
    assert len(rows) == 200 and [row for row, _, _ in rejects.rows] == [2]


def test_excel_sep_line_names_the_delimiter(tmp_path):
    """Excel's "sep=;" first line: the delimiter it names is used and the header follows (it
    was read as the header, so nothing mapped); ragged rows keep their physical line."""
    p = write(tmp_path, "eu.csv", "sep=;\r\nemail;name\r\na@x.co;Ann, Lee\r\nb@x.co;B;x\r\n")
    rows, rejects = read_all(p)
    assert rows == [{"email": "a@x.co", "name": "Ann, Lee", "source_row": 1}]
    assert [row for row, _, _ in rejects.rows] == [4]


def test_a_file_of_only_a_byte_order_mark_is_empty(tmp_path):
    fmt, why = readers.detect_format(write(tmp_path, "bom.csv", b"\xef\xbb\xbf\r\n"))
    assert (fmt, why) == ("unrecognized", "no content: only blanks (or a byte-order mark)")


def test_json_array_and_wrapped_records(tmp_path):
    arr = write(tmp_path, "a.json", json.dumps([{"email": "a@b.co"}, 5, {"email": "c@d.co"}]))
    assert detect(arr) == "json"
    rows, rejects = read_all(arr)
    assert [r["source_row"] for r in rows] == [1, 3] and rejects.rows[0][0] == 2
    wrapped = write(tmp_path, "w.json", json.dumps({"meta": {"n": 1},
                                                    "users": [{"email": "a@b.co"}]}, indent=2))
    assert detect(wrapped) == "json"
    assert read_all(wrapped)[0][0]["email"] == "a@b.co"
    with pytest.raises(ReaderError, match="invalid JSON"):
        read_all(write(tmp_path, "bad.json", "[{\"a\": 1}, {"), "json")


def test_a_minified_document_on_one_line_is_a_document_not_one_record(tmp_path):
    """{"data": [...]} on one line (an API export, minified) is a JSON document of records;
    it was read as one JSON Lines record holding every person as text. A one-line record
    stays a record, its list of scalars a value."""
    people = [{"email": "m1@x.co"}, {"email": "m2@x.co"}]
    for doc in ({"data": people, "total": 2}, {"total": 2, "hits": people}):
        p = write(tmp_path, "min.json", json.dumps(doc))
        assert detect(p) == "json"
        assert [r["email"] for r in read_all(p)[0]] == ["m1@x.co", "m2@x.co"]
    one = write(tmp_path, "one.jsonl", json.dumps({"email": "o@x.co", "tags": ["a", "b"]}))
    assert detect(one) == "jsonl"
    assert read_all(one)[0] == [{"email": "o@x.co", "tags": '["a","b"]', "source_row": 1}]
    pretty = write(tmp_path, "one.json", json.dumps({"email": "o@x.co", "tags": ["a"]},
                                                    indent=2))
    assert read_all(pretty)[0] == [{"email": "o@x.co", "tags": '["a"]', "source_row": 1}]
    # a person with a list is that person, not a wrapper around the list, on one line or many
    for person in ({"email": "o@x.co", "orders": [{"id": 1}]},
                   {"email": "o@x.co", "items": [{"id": 1}]}, {"email": "o@x.co", "results": []},
                   {"customer_id": 7, "name": "Ann", "orders": [{"id": 1}]}):
        for text in (json.dumps(person) + "\n", json.dumps(person, indent=2)):
            rows, _ = read_all(write(tmp_path, "orders.json", text))
            assert len(rows) == 1 and rows[0]["source_row"] == 1, (person, rows)
            assert {k for k in rows[0] if k != "source_row"} == set(person), (person, rows)
    # a wrapper's own id is not a person; a .jsonl name keeps a one-line file JSON Lines
    wrapper = {"id": "resp-1", "total": 2, "data": people}
    assert [r["email"] for r in read_all(write(tmp_path, "w.json", json.dumps(wrapper)))[0]] == [
        "m1@x.co", "m2@x.co"]
    assert detect(write(tmp_path, "w.jsonl", json.dumps(wrapper))) == "jsonl"


def test_records_keyed_by_id(tmp_path):
    """{"u1": {...}, "u2": {...}} (keyed exports): one record per key, the key as `id`; one
    record's sub-objects that share no field stay one record."""
    keyed = {"u1": {"email": "k1@x.co"}, "u2": {"email": "k2@x.co", "name": "K2"}}
    for text in (json.dumps(keyed), json.dumps(keyed, indent=2)):
        rows, _ = read_all(write(tmp_path, "keyed.json", text))
        assert [(r["id"], r["email"]) for r in rows] == [("u1", "k1@x.co"), ("u2", "k2@x.co")]
    nested = {"contact": {"email": "n@x.co"}, "address": {"city": "Oslo"}}
    rows, _ = read_all(write(tmp_path, "nested.json", json.dumps(nested, indent=2)))
    assert rows == [{"contact.email": "n@x.co", "address.city": "Oslo", "source_row": 1}]
    places = {"home": {"city": "Oslo", "zip": "1"}, "work": {"city": "Bergen", "zip": "2"}}
    rows, _ = read_all(write(tmp_path, "places.json", json.dumps(places)))
    assert len(rows) == 1 and rows[0]["work.city"] == "Bergen"


def test_parquet_types_become_text(tmp_path):
    p = tmp_path / "a.parquet"
    pl.DataFrame({"id": [1, 2], "email": ["a@b.co", None], "score": [1.5, 2.0],
                  "when": [None, None]}).with_columns(
        pl.date(2020, 1, 2).alias("created")).write_parquet(p)
    assert detect(p) == "parquet"
    rows, _ = read_all(p)
    assert rows[0]["id"] == "1" and rows[0]["created"] == "2020-01-02"
    assert rows[1]["email"] is None


def test_binary_garbage_and_wrong_extension(tmp_path):
    garbage = write(tmp_path, "data.csv", bytes(range(256)) * 64)
    with pytest.raises(ReaderError, match="unrecognized"):
        detect(garbage)
    disguised = tmp_path / "really_parquet.csv"
    pl.DataFrame({"email": ["a@b.co"]}).write_parquet(disguised)
    assert detect(disguised) == "parquet"


def test_every_core_format_registered():
    assert {"csv", "json", "jsonl", "parquet"} <= set(readers.formats())
