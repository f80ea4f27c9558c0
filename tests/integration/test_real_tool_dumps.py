"""Dumps produced by the real tools during the test (mariadb-dump, pg_dump), read back cell by
cell: quotes, backslashes, NULL vs empty, unicode, newlines/tabs, `;` and `\\.` inside values."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from creditlake import readers
from creditlake.readers import ReaderOptions, ReaderRejects, subsource_of
from creditlake.readers._batches import notice_of
from creditlake.samples_formats import sql_literal

pytestmark = pytest.mark.integration
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# (id, email, full_name, phone, note, created)
PEOPLE: list[tuple] = [
    (1, "o'brien@example.com", "Seán O'Brien", "+353 1 234 5678",
     'say "hi"; back\\slash \\n is not a newline', "2020-01-02"),
    (2, None, "Line1\nLine2\ttab\r\nCRLF", "", None, None),
    (3, "x@y.z", "日本語 テスト 🎉", "123", "semi;colon),(paren\n\\.\nnext", "1999-12-31"),
    (4, "'; DROP TABLE x; --", "/* not a comment */ -- nor this", "#hash", "E'x' ''", "2000-02-29"),
    (5, "", "  padded  ", None, "ctrl-z:\x1a", "2024-06-30"),
]
COLUMNS = ["id", "email", "full_name", "phone", "note", "created"]


def expected_rows() -> list[dict]:
    return [{c: (None if v is None else str(v)) for c, v in zip(COLUMNS, r, strict=True)}
            | {"source_row": i} for i, r in enumerate(PEOPLE, start=1)]


def read_all(path: Path) -> tuple[dict[str, list[dict]], list[tuple[str | None, str]],
                                  ReaderRejects]:
    fmt = readers.detect(path)
    assert fmt == "sql"
    rejects = ReaderRejects()
    rows: dict[str, list[dict]] = {}
    notices = []
    for b in readers.get_reader(fmt)(path, ReaderOptions(), rejects=rejects):
        if notice_of(b):
            notices.append((subsource_of(b), notice_of(b)))
        else:
            rows.setdefault(subsource_of(b) or "", []).extend(b.to_pylist())
    return rows, notices, rejects


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        msg = f"{tool} is not installed"
        if IN_CI:
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


# ------------------------------------------------------------------------------- MariaDB

def _mariadb(sql: str) -> None:
    subprocess.run(["mariadb", "-uroot", "-h", "127.0.0.1", "--default-character-set=utf8mb4",
                    "test"], input=sql.encode(), check=True, capture_output=True)


def _need_mariadb() -> None:
    _need("mariadb")
    _need("mariadb-dump")
    ping = subprocess.run(["mariadb-admin", "-uroot", "-h", "127.0.0.1", "ping"],
                          capture_output=True)
    if ping.returncode != 0:
        if IN_CI:
            pytest.fail("MariaDB is not reachable (CI=true)", pytrace=False)
        pytest.skip("MariaDB is not reachable")


@pytest.fixture
def mariadb_tables() -> Iterator[tuple[str, str]]:
    _need_mariadb()
    people, orders = f"h6_people_{uuid.uuid4().hex[:8]}", f"h6_orders_{uuid.uuid4().hex[:8]}"
    values = ",".join("(" + ",".join(sql_literal(v) for v in r) + ", _binary 'PNG\\0\\Zé')"
                      for r in PEOPLE)
    _mariadb(f"""
        CREATE TABLE {people} (id INT PRIMARY KEY, `email` VARCHAR(200), full_name TEXT,
          phone VARCHAR(40), note TEXT, created DATE, avatar VARBINARY(16),
          KEY k_mail (`email`)) DEFAULT CHARSET=utf8mb4;
        INSERT INTO {people} VALUES {values};
        CREATE TABLE {orders} (order_id INT, total DECIMAL(10,2), currency CHAR(3));
        INSERT INTO {orders} VALUES (1, 9.99, 'EUR'), (2, 0.5, 'USD');""")
    yield people, orders
    _mariadb(f"DROP TABLE IF EXISTS {people}; DROP TABLE IF EXISTS {orders};")


@pytest.mark.parametrize("options", [[], ["--skip-extended-insert"], ["--complete-insert"]],
                         ids=["extended", "row-per-insert", "complete-insert"])
def test_mariadb_dump(tmp_path: Path, mariadb_tables: tuple[str, str],
                      options: list[str]) -> None:
    people, orders = mariadb_tables
    out = tmp_path / "mariadb.sql"
    with open(out, "wb") as f:
        subprocess.run(["mariadb-dump", "-uroot", "-h", "127.0.0.1", *options, "test", people,
                        orders], stdout=f, check=True)
    rows, notices, rejects = read_all(out)
    got = rows[f"mariadb.sql#{people}"]
    assert [{k: v for k, v in r.items() if k != "avatar"} for r in got] == expected_rows()
    assert {r["avatar"] for r in got} == {"PNG\x00\x1aé"}
    assert list(rows) == [f"mariadb.sql#{people}"]
    assert notices == [(f"mariadb.sql#{orders}", f"table {orders} skipped: no person columns "
                        "(order_id, total, currency)")]
    assert rejects.rows == []


# ---------------------------------------------------------------------------- PostgreSQL

@pytest.fixture
def pg_tables(postgres_url: str) -> Iterator[tuple[str, str, list[str]]]:
    import psycopg

    _need("pg_dump")
    url = postgres_url.replace("+psycopg", "")
    people, orders = f"h6_people_{uuid.uuid4().hex[:8]}", f"h6_orders_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE {people} (id int PRIMARY KEY, email text, full_name text, '
                     f'phone text, note text, created date)')
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {people} VALUES (%s, %s, %s, %s, %s, %s)", PEOPLE)
        conn.execute(f"CREATE TABLE {orders} (order_id int, total numeric(10,2), "
                     f"currency char(3))")
        conn.execute(f"INSERT INTO {orders} VALUES (1, 9.99, 'EUR')")
    u = urlparse(url)
    conn_args = ["-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432),
                 "-U", u.username or "postgres", u.path.lstrip("/") or "test"]
    yield people, orders, conn_args
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {people}, {orders}")


@pytest.mark.parametrize("options", [[], ["--inserts"], ["--column-inserts"],
                                     ["--inserts", "--rows-per-insert=2"],
                                     ["--quote-all-identifiers", "--column-inserts"],
                                     ["--quote-all-identifiers"]],
                         ids=["copy", "inserts", "column-inserts", "rows-per-insert",
                              "quoted-column-inserts", "quoted-copy"])
def test_pg_dump(tmp_path: Path, pg_tables: tuple[str, str, list[str]],
                 options: list[str]) -> None:
    people, orders, conn_args = pg_tables
    out = tmp_path / "pg.sql"
    with open(out, "wb") as f:
        subprocess.run(["pg_dump", *options, "-t", people, "-t", orders, *conn_args],
                       stdout=f, check=True)
    rows, notices, rejects = read_all(out)
    assert list(rows) == [f"pg.sql#public.{people}"]
    assert rows[f"pg.sql#public.{people}"] == expected_rows()
    assert notices == [(f"pg.sql#public.{orders}", f"table public.{orders} skipped: no person "
                        "columns (order_id, total, currency)")]
    assert rejects.rows == []


def test_pg_dump_custom_format_is_refused_with_a_hint(tmp_path: Path,
                                                      pg_tables: tuple[str, str, list[str]]
                                                      ) -> None:
    people, _, conn_args = pg_tables
    out = tmp_path / "pg.dump"
    subprocess.run(["pg_dump", "-Fc", "-t", people, "-f", str(out), *conn_args], check=True)
    with pytest.raises(readers.ReaderError, match="pg_restore"):
        readers.detect(out)


def test_mariadb_dump_xml(tmp_path: Path) -> None:
    """`mariadb-dump --xml`: <table_data name=…><row><field name=…> with xsi:nil for NULL.
    XML 1.0 cannot carry control characters, and parsers turn \\r\\n into \\n."""
    _need_mariadb()
    people, orders = f"h6_xpeople_{uuid.uuid4().hex[:8]}", f"h6_xorders_{uuid.uuid4().hex[:8]}"
    rows = [r for r in PEOPLE if not any(isinstance(v, str) and "\x1a" in v for v in r)]
    values = ",".join("(" + ",".join(sql_literal(v) for v in r) + ")" for r in rows)
    try:
        _mariadb(f"""
            CREATE TABLE {people} (id INT PRIMARY KEY, email VARCHAR(200), full_name TEXT,
              phone VARCHAR(40), note TEXT, created DATE) DEFAULT CHARSET=utf8mb4;
            INSERT INTO {people} VALUES {values};
            CREATE TABLE {orders} (order_id INT, total DECIMAL(10,2));
            INSERT INTO {orders} VALUES (1, 9.99);""")
        out = tmp_path / "dump.xml"
        with open(out, "wb") as f:
            subprocess.run(["mariadb-dump", "-uroot", "-h", "127.0.0.1", "--xml", "test", people,
                            orders], stdout=f, check=True)
    finally:
        _mariadb(f"DROP TABLE IF EXISTS {people}; DROP TABLE IF EXISTS {orders};")
    assert readers.detect(out) == "xml"
    got: dict[str, list[dict]] = {}
    notices = []
    for b in readers.get_reader("xml")(out, ReaderOptions()):
        if notice_of(b):
            notices.append((subsource_of(b), notice_of(b)))
        else:
            got.setdefault(subsource_of(b) or "", []).extend(b.to_pylist())
    want = [{c: (None if v is None else str(v).replace("\r\n", "\n")) for c, v in
             zip(COLUMNS, r, strict=True)} | {"source_row": i}
            for i, r in enumerate(rows, start=1)]
    assert got == {f"dump.xml#{people}": want}
    assert notices == [(f"dump.xml#{orders}",
                        f"table {orders} skipped: no person columns (order_id, total)")]
