"""Every issue-6 format end to end through the Dagster assets: files produced by real tools
(mariadb-dump, pg_dump, xlsxwriter, xlwt, ElementTree, zipfile) are ingested and the loaded
counts and normalized values checked in ClickHouse."""

import subprocess
import uuid
import xml.etree.ElementTree as ET
import zipfile

import dagster as dg
import pytest

from cli.runner import ingest_with_dagster
from creditlake.quality import reconciliation
from creditlake.samples_formats import write_xlsx

pytestmark = pytest.mark.integration

PEOPLE = [{"id": i, "email": f"Person{i}@Example.com", "full_name": f"Ann O'Lee {i}",
           "phone": f"+44 20 7946 {i:04d}", "country": "United Kingdom",
           "created": f"2021-03-{(i % 28) + 1:02d}"} for i in range(1, 41)]


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def check_loaded(engine, results, expected_rows: int = len(PEOPLE)) -> None:
    assert all(r.run_ok for r in results), [r.as_dict() for r in results]
    m = results[0].manifest
    assert (m.rows_read, m.loaded, m.duplicates, m.rejected) == (expected_rows, expected_rows,
                                                                 0, 0), m
    row = engine.query_arrow(
        f"SELECT email, name, phone, country, toString(created_date) AS d FROM "
        f"{engine.database}.records WHERE user_id = '7'").to_pylist()
    assert row == [{"email": "person7@example.com", "name": "Ann O'Lee 7",
                    "phone": "+442079460007", "country": "GB", "d": "2021-03-08"}]
    assert reconciliation(engine).passed


def test_xml_from_elementtree(settings, engine, instance, tmp_path):
    root = ET.Element("export", {"xmlns": "urn:example:crm"})
    for p in PEOPLE:
        el = ET.SubElement(root, "person", {"id": str(p["id"])})
        for k in ("email", "full_name", "phone", "country", "created"):
            ET.SubElement(el, k).text = p[k]
    f = tmp_path / "people.xml"
    ET.ElementTree(root).write(f, encoding="utf-8", xml_declaration=True)
    check_loaded(engine, ingest_with_dagster(settings, [f], instance=instance))


def test_xlsx_from_xlsxwriter_with_title_rows(settings, engine, instance, tmp_path):
    f = write_xlsx(PEOPLE, tmp_path / "people.xlsx")
    r = ingest_with_dagster(settings, [f], instance=instance)
    assert r[0].manifest.format == "excel"
    check_loaded(engine, r)


def test_xls_from_xlwt(settings, engine, instance, tmp_path):
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("Contacts")
    cols = list(PEOPLE[0])
    for c, name in enumerate(cols):
        sheet.write(0, c, name)
    for r, p in enumerate(PEOPLE, start=1):
        for c, name in enumerate(cols):
            sheet.write(r, c, p[name])
    f = tmp_path / "people.xls"
    book.save(str(f))
    check_loaded(engine, ingest_with_dagster(settings, [f], instance=instance))


def test_zip_of_csv_and_xml(settings, engine, instance, tmp_path):
    header = "id,email,full_name,phone,country,created\n"
    csv_part = header + "".join(
        ",".join(f'"{p[k]}"' for k in ("id", "email", "full_name", "phone", "country",
                                       "created")) + "\n" for p in PEOPLE[:20])
    root = ET.Element("people")
    for p in PEOPLE[20:]:
        el = ET.SubElement(root, "row")
        for k, v in p.items():
            ET.SubElement(el, k).text = str(v)
    f = tmp_path / "bundle.zip"
    with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a/first.csv", csv_part)
        z.writestr("b/second.xml", ET.tostring(root))
    r = ingest_with_dagster(settings, [f], instance=instance)
    assert set(r[0].manifest.mappings) == {"bundle.zip/a/first.csv", "bundle.zip/b/second.xml"}
    check_loaded(engine, r)


def _sql(cmd: list[str], sql: str) -> None:
    subprocess.run(cmd, input=sql.encode(), check=True, capture_output=True)


def _rows_sql() -> str:
    def q(v):
        return "'" + str(v).replace("'", "''") + "'"
    return ",".join("(" + ",".join(q(p[k]) for k in PEOPLE[0]) + ")" for p in PEOPLE)


def test_mariadb_dump(settings, engine, instance, tmp_path):
    table = f"e2e_{uuid.uuid4().hex[:8]}"
    mysql = ["mariadb", "-uroot", "-h", "127.0.0.1", "--default-character-set=utf8mb4", "test"]
    _sql(mysql, f"CREATE TABLE {table} (id INT PRIMARY KEY, email TEXT, full_name TEXT, "
                f"phone TEXT, country TEXT, created DATE); INSERT INTO {table} VALUES "
                f"{_rows_sql()};")
    try:
        f = tmp_path / "dump.sql"
        with open(f, "wb") as out:
            subprocess.run(["mariadb-dump", "-uroot", "-h", "127.0.0.1", "test", table],
                           stdout=out, check=True)
    finally:
        _sql(mysql, f"DROP TABLE IF EXISTS {table};")
    r = ingest_with_dagster(settings, [f], instance=instance)
    assert r[0].manifest.format == "sql"
    check_loaded(engine, r)


def test_pg_dump(settings, engine, instance, tmp_path, postgres_url):
    table = f"e2e_{uuid.uuid4().hex[:8]}"
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-q", "-v",
            "ON_ERROR_STOP=1"]
    _sql(psql, f"CREATE TABLE {table} (id INT PRIMARY KEY, email TEXT, full_name TEXT, "
               f"phone TEXT, country TEXT, created DATE); INSERT INTO {table} VALUES "
               f"{_rows_sql()};")
    try:
        f = tmp_path / "pg.sql"
        with open(f, "wb") as out:
            subprocess.run(["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "-t", table, "test"],
                           stdout=out, check=True)
    finally:
        _sql(psql, f"DROP TABLE IF EXISTS {table};")
    check_loaded(engine, ingest_with_dagster(settings, [f], instance=instance))
