"""SQL dump reader: mysqldump/pg_dump syntax, multi-table sub-sources, bad statements."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pytest

from creditlake import readers
from creditlake.readers import ReaderError, ReaderOptions, ReaderRejects, subsource_of
from creditlake.readers._batches import notice_of
from creditlake.readers.sql_dump import is_person_table, looks_like_sql_dump, read
from creditlake.samples_formats import write_sql_dump

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sql"


def collect(path: Path, opts: ReaderOptions | None = None, rejects: ReaderRejects | None = None
            ) -> tuple[dict[str, list[dict]], list[tuple[str | None, str]]]:
    """Rows per sub-source (without source_row) and the notices."""
    rows: dict[str, list[dict]] = {}
    notices: list[tuple[str | None, str]] = []
    for b in read(path, opts or ReaderOptions(), rejects=rejects):
        if (n := notice_of(b)) is not None:
            notices.append((subsource_of(b), n))
            continue
        rows.setdefault(subsource_of(b) or "", []).extend(b.to_pylist())
    return rows, notices


def test_mysqldump8_layout_binary_escapes_and_non_person_table() -> None:
    rows, notices = collect(FIXTURES / "mysqldump8_binary.sql")
    assert list(rows) == ["mysqldump8_binary.sql#customers"]
    got = rows["mysqldump8_binary.sql#customers"]
    assert [r["source_row"] for r in got] == [1, 2, 3]
    assert got[0] == {
        "id": "1", "email": "ann@example.com", "first_name": "Ann", "last_name": "O'Neil",
        "tel": "+1 (555) 010-0001", "avatar": "PNG\x00\x1a",
        "notes": 'Line one\nLine two\r\n"quoted" \\ backslash; semicolon', "balance": "10.50",
        "source_row": 1,
    }
    assert got[1]["email"] is None and got[1]["last_name"] == "" and got[1]["first_name"] == "Björn"
    assert got[2]["avatar"] == "" and got[2]["notes"] == "it's (fine), really"
    assert got[2]["balance"] is None
    assert notices == [("mysqldump8_binary.sql#invoices",
                        "table invoices skipped: no person columns (invoice_no, amount, currency)")]


def test_schema_is_strings_plus_source_row() -> None:
    batch = next(b for b in read(FIXTURES / "mysqldump8_binary.sql", ReaderOptions())
                 if b.num_rows)
    assert batch.schema.field("source_row").type == pa.uint64()
    assert all(batch.schema.field(n).type == pa.string() for n in batch.schema.names[:-1])


PG_DUMP = r"""--
-- PostgreSQL database dump
--
\restrict abc123
SET statement_timeout = 0;
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);

CREATE TABLE public.people (
    id integer NOT NULL,
    "E-Mail" text,
    full_name text,
    phone character varying(40),
    note text,
    CONSTRAINT people_chk CHECK ((id > 0))
);

COPY public.people (id, "E-Mail", full_name, phone, note) FROM stdin;
1	a@x.com	Ann O'Neil	+1 555	tab\there\nnewline \\ backslash
2	\N	Zoë		\N
3	c@x.com	Semi;colon	123	\\.
\.

INSERT INTO public.people VALUES (4, 'd@x.com', 'It''s me', NULL, E'esc\\aped\nline');
INSERT INTO public.people (id, "E-Mail", full_name, phone, note) VALUES
	(5, 'e@x.com', 'Multi
line', '', 'x'),
	(6, 'f@x.com', 'Paren (a,b)', '0', 'semi;colon');

\unrestrict abc123
"""


def test_pg_dump_copy_and_inserts(tmp_path: Path) -> None:
    p = tmp_path / "pg.sql"
    p.write_text(PG_DUMP, encoding="utf-8")
    assert readers.detect(p) == "sql"
    rows, notices = collect(p)
    assert notices == []
    got = rows["pg.sql#public.people"]
    assert [r["source_row"] for r in got] == [1, 2, 3, 4, 5, 6]
    assert got[0]["note"] == "tab\there\nnewline \\ backslash"
    assert got[0]["full_name"] == "Ann O'Neil"
    assert got[1] == {"id": "2", "E-Mail": None, "full_name": "Zoë", "phone": "",
                      "note": None, "source_row": 2}
    assert got[2]["note"] == "\\."
    assert got[3]["full_name"] == "It's me" and got[3]["phone"] is None
    assert got[3]["note"] == "esc\\aped\nline"
    assert got[4]["full_name"] == "Multi\nline"
    assert got[5]["full_name"] == "Paren (a,b)" and got[5]["note"] == "semi;colon"


BROKEN = """-- MySQL dump 10.13
CREATE TABLE `people` (`id` int, `email` varchar(99), `name` text);
INSERT INTO `people` VALUES (1,'a@x.com','Ann'),(2,'b@x.com','Bob');
INSERT INTO `people` VALUES (3,'c@x.com' 'Cy'),(4,'d@x.com','Di');
INSERT INTO `people` VALUES (5,'e@x.com','Eve');
INSERT INTO `people` VALUES (6,'f@x.com','unterminated),(7,'g@x.com','G');
INSERT INTO `people` VALUES (8,'h@x.com','Hal');
"""


def test_syntax_errors_skip_statement_and_continue_then_raise(tmp_path: Path) -> None:
    p = tmp_path / "broken.sql"
    p.write_text(BROKEN)
    ids, notices = [], []
    with pytest.raises(ReaderError, match=r"2 statement\(s\).*line 4"):
        for b in read(p, ReaderOptions()):
            if notice_of(b):
                notices.append(notice_of(b))
            ids += b.column("id").to_pylist() if b.num_rows else []
    # rows before and after both bad statements are read; the broken quote at line 6 swallows
    # nothing after it (the reader resyncs at the next statement line)
    assert ids == ["1", "2", "5", "8"]
    assert len(notices) == 2
    assert "line 4" in notices[0] and "line 6" in notices[1]


def test_syntax_errors_go_to_rejects_when_collected(tmp_path: Path) -> None:
    p = tmp_path / "broken.sql"
    p.write_text(BROKEN)
    rejects = ReaderRejects()
    rows, _ = collect(p, rejects=rejects)  # no exception: the rejects carry the problems
    got = rows["broken.sql#people"]
    assert [r["id"] for r in got] == ["1", "2", "5", "8"]
    assert len(rejects.rows) == 2
    # rejects take their own place in the row numbering: nothing is counted twice
    numbers = [r["source_row"] for r in got] + [r[0] for r in rejects.rows]
    assert sorted(numbers) == list(range(1, 7))
    assert "line 4" in rejects.rows[0][2] and "'c@x.com' 'Cy'" in rejects.rows[0][1]


def test_copy_block_with_ragged_row_keeps_good_rows(tmp_path: Path) -> None:
    p = tmp_path / "ragged.sql"
    p.write_text("-- PostgreSQL database dump\n"
                 "COPY public.t (id, email) FROM stdin;\n1\ta@x.com\n2\tb@x.com\textra\n"
                 "3\tc@x.com\n\\.\n")
    rejects = ReaderRejects()
    rows, _ = collect(p, rejects=rejects)
    got = rows["ragged.sql#public.t"]
    assert [(r["id"], r["source_row"]) for r in got] == [("1", 1), ("3", 3)]
    assert rejects.rows[0][0] == 2 and "3 fields, expected 2" in rejects.rows[0][2]


def test_table_option_selects_and_batches_keep_numbering(tmp_path: Path) -> None:
    people = [{"Email": f"u{i}@x.com", "Name": f"N{i}"} for i in range(25)]
    p = write_sql_dump(people, tmp_path / "d.sql", rows_per_insert=4)
    batches = [b for b in read(p, ReaderOptions(batch_rows=10, table="contacts"))]
    assert all(subsource_of(b) == "d.sql#contacts" for b in batches)
    nums = [n for b in batches for n in b.column("source_row").to_pylist()]
    assert nums == list(range(1, 26))
    assert [n for b in batches for n in b.column("Email").to_pylist()] == [
        r["Email"] for r in people]


def test_insert_without_create_table_gets_positional_names(tmp_path: Path) -> None:
    p = tmp_path / "bare.sql"
    p.write_text("INSERT INTO people VALUES (1,'a@x.com'),(2,NULL);\n")
    rows, _ = collect(p)
    assert rows["bare.sql#people"] == [
        {"column_1": "1", "column_2": "a@x.com", "source_row": 1},
        {"column_1": "2", "column_2": None, "source_row": 2}]


def test_gzip_dump_is_read_transparently(tmp_path: Path) -> None:
    p = tmp_path / "d.sql.gz"
    p.write_bytes(gzip.compress((FIXTURES / "mysqldump8_binary.sql").read_bytes()))
    assert readers.detect(p) == "sql"
    rows, _ = collect(p)
    assert len(rows["d.sql.gz#customers"]) == 3


def test_garbage_is_not_a_dump(tmp_path: Path) -> None:
    assert not looks_like_sql_dump(b"email,name\na@x.com,Ann\n")
    assert not looks_like_sql_dump(b"<?xml version='1.0'?><a/>")
    assert looks_like_sql_dump(b"-- MariaDB dump 10.19\n")
    assert looks_like_sql_dump(b"\n\nINSERT INTO t VALUES (1);\n")
    p = tmp_path / "garbage.sql"
    p.write_bytes(b"INSERT INTO t VALUES (1,'never closed\n" + bytes(range(256)) * 10)
    with pytest.raises(ReaderError, match=r"statement\(s\) in the dump could not be read"):
        list(read(p, ReaderOptions()))


@pytest.mark.parametrize(("cols", "person"), [
    (["id", "email"], True),
    (["customer_id", "First Name", "Last Name", "city"], True),
    (["id", "name", "city"], True),
    (["id", "name", "price"], False),
    (["order_id", "user_id", "total"], False),
    (["invoice_no", "amount", "currency"], False),
])
def test_is_person_table(cols: list[str], person: bool) -> None:
    assert is_person_table(cols) is person


def test_latin1_dump_decodes_as_cp1252(tmp_path: Path) -> None:
    p = tmp_path / "latin1.sql"
    p.write_bytes("/*!40101 SET NAMES latin1 */;\nINSERT INTO people (email, name) VALUES "
                  "('m@x.de','Jörg Müller – “q”');\n".encode("cp1252"))
    rows, _ = collect(p)
    assert rows["latin1.sql#people"][0]["name"] == "Jörg Müller – “q”"


def test_huge_insert_is_tokenized_in_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    import creditlake.readers.sql_dump as sd

    monkeypatch.setattr(sd, "SLICE_CHARS", 300)
    monkeypatch.setattr(sd, "SLICE_TUPLES", 7)
    tuples = [f"({i},'u{i}@x.com','a (b), c\\'d')" for i in range(100)]
    values = ",".join(tuples)
    p = tmp_path / "one.sql"
    head = "INSERT INTO people (id, email, note) VALUES"
    p.write_text(f"{head} {values};\n{head} {','.join(tuples[:30])}, oops (1,2,3);\n")
    rejects = ReaderRejects()
    rows, _ = collect(p, rejects=rejects)
    got = rows["one.sql#people"]
    ids = [int(r["id"]) for r in got]
    assert ids[:100] == list(range(100))
    assert all(r["note"] == "a (b), c'd" for r in got)
    # the broken second statement: the runs before the error are read, the rest rejected
    assert 0 < len(ids) - 100 < 100 and len(rejects.rows) == 1
    assert "do not parse after character" in rejects.rows[0][2]


def test_copy_terminator_without_final_newline_and_truncated_copy(tmp_path: Path) -> None:
    p = tmp_path / "noeol.sql"
    p.write_text("-- PostgreSQL database dump\nCOPY public.t (id, email) FROM stdin;\n"
                 "1\ta@x.com\n\\.")
    rows, _ = collect(p)
    assert rows["noeol.sql#public.t"] == [{"id": "1", "email": "a@x.com", "source_row": 1}]
    cut = tmp_path / "cut.sql"
    cut.write_text("-- PostgreSQL database dump\nCOPY public.t (id, email) FROM stdin;\n"
                   "1\ta@x.com\n2\tb@x.com\n")
    got = []
    with pytest.raises(ReaderError, match="not terminated"):
        for b in read(cut, ReaderOptions()):
            got += b.column("email").to_pylist() if b.num_rows else []
    assert got == ["a@x.com", "b@x.com"]


def test_dump_without_person_tables_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "shop.sql"
    p.write_text("CREATE TABLE products (id int, name text, price decimal(9,2));\n"
                 "INSERT INTO products VALUES (1,'Pen',1.50);\n")
    with pytest.raises(ReaderError, match=r"no person tables.*products \(id, name, price\)"):
        list(read(p, ReaderOptions()))


def test_truncated_gzip_dump_keeps_rows_before_the_cut(tmp_path: Path) -> None:
    people = [{"Email": f"u{i}@x.com", "Name": f"N{i}"} for i in range(3000)]
    src = write_sql_dump(people, tmp_path / "d.sql", rows_per_insert=100)
    p = tmp_path / "d.sql.gz"
    data = gzip.compress(src.read_bytes())
    p.write_bytes(data[: len(data) // 2])
    got = []
    with pytest.raises(ReaderError, match="truncated or corrupt"):
        for b in read(p, ReaderOptions()):
            got += b.column("Email").to_pylist() if b.num_rows else []
    assert 0 < len(got) < 3000 and got == [r["Email"] for r in people[: len(got)]]


@pytest.mark.parametrize("tail", ["ON DUPLICATE KEY UPDATE email=VALUES(email)",
                                  "ON CONFLICT (id) DO NOTHING"])
def test_upsert_tail_is_not_rows(tmp_path: Path, tail: str) -> None:
    p = tmp_path / "up.sql"
    p.write_text(f"INSERT INTO people (id, email) VALUES (1,'a@x.com'),(2,'on@x.com') {tail};\n")
    rows, _ = collect(p)
    assert [r["email"] for r in rows["up.sql#people"]] == ["a@x.com", "on@x.com"]


def test_a_dump_cut_mid_insert_keeps_the_statements_whole_rows(tmp_path: Path) -> None:
    """The file ends inside an extended INSERT: the tuples before the cut are rows and only
    the cut one is rejected (it used to be the whole statement, 300 rows as one reject)."""
    rows = ",".join(f"({i},'u{i}@x.com')" for i in range(1, 301))
    p = tmp_path / "cut.sql"
    p.write_text("-- MySQL dump 10.13\nCREATE TABLE people (id int, email varchar(99));\n"
                 f"INSERT INTO people VALUES (0,'first@x.com');\nINSERT INTO people VALUES "
                 f"{rows}"[:-5])
    rejects = ReaderRejects()
    got, notices = collect(p, rejects=rejects)
    emails = [r["email"] for r in got["cut.sql#people"]]
    assert emails == ["first@x.com"] + [f"u{i}@x.com" for i in range(1, 300)]
    assert [(row, text) for row, text, _ in rejects.rows] == [(301, "(300,'u300@x.")]
    assert "row cut off where the file ends" in rejects.rows[0][2]
    assert len(notices) == 1


def test_a_cut_tuple_on_its_own_line_is_rejected_at_that_line(tmp_path: Path) -> None:
    """mysqldump --extended-insert with one tuple per line: the reject names the cut
    tuple's line, not the line of the last whole tuple before it."""
    p = tmp_path / "cut.sql"
    p.write_text("CREATE TABLE people (id int, email varchar(99));\n"  # line 1
                 "INSERT INTO people VALUES\n(1,'a@x.com'),\n(2,'b@x.com'),\n(3,'c@x")
    rejects = ReaderRejects()
    got, _ = collect(p, rejects=rejects)
    assert [r["email"] for r in got["cut.sql#people"]] == ["a@x.com", "b@x.com"]
    assert len(rejects.rows) == 1
    assert rejects.rows[0][1] == "(3,'c@x"
    assert "line 5" in rejects.rows[0][2], rejects.rows[0][2]
