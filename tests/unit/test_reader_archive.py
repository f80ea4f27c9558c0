"""Archive reader: zip members as sub-sources, compressed containers, zip-bomb limits."""

from __future__ import annotations

import bz2
import gzip
import io
import subprocess
import zipfile
from pathlib import Path

import pytest
import zstandard

from creditlake import readers
from creditlake.readers import ReaderError, ReaderOptions, ReaderRejects, subsource_of
from creditlake.readers import archive as arc
from creditlake.readers._batches import notice_of
from creditlake.samples_formats import write_xlsx, write_zip

PEOPLE = [{"E-Mail Address": f"u{i}@x.com", "Full Name": f"Name {i}", "Phone #": f"+1 555 {i}"}
          for i in range(12)]


def collect(path: Path, rejects: ReaderRejects | None = None
            ) -> tuple[dict[str, list[dict]], list[tuple[str | None, str]]]:
    rows: dict[str, list[dict]] = {}
    notices = []
    for b in arc.read(path, ReaderOptions(), rejects=rejects):
        if notice_of(b):
            notices.append((subsource_of(b), notice_of(b)))
        else:
            rows.setdefault(subsource_of(b) or "", []).extend(b.to_pylist())
    return rows, notices


def test_zip_members_are_detected_and_delegated(tmp_path: Path) -> None:
    p = write_zip(PEOPLE, tmp_path / "bundle.zip", formats=("csv", "xml", "sql", "xlsx"))
    assert readers.detect(p) == "archive"
    rows, notices = collect(p)
    assert sorted(rows) == ["bundle.zip/contacts_1.csv", "bundle.zip/contacts_2.xml",
                            "bundle.zip/contacts_3.sql#contacts",
                            "bundle.zip/contacts_4.xlsx#Contacts"]
    emails = sorted(r.get("E-Mail Address") or r.get("E-Mail_Address")
                    for rs in rows.values() for r in rs)
    assert emails == sorted(r["E-Mail Address"] for r in PEOPLE)  # nothing lost, nothing twice
    assert rows["bundle.zip/contacts_1.csv"][0] == {
        "E-Mail Address": "u0@x.com", "Full Name": "Name 0", "Phone #": "+1 555 0",
        "source_row": 1}
    # the dump's non-person table is reported under the member's name
    assert notices == [("bundle.zip/contacts_3.sql#orders",
                        "table orders skipped: no person columns (order_id, total, currency)")]


def test_nested_zip_and_junk_members(tmp_path: Path) -> None:
    inner = write_zip(PEOPLE[:4], tmp_path / "inner.zip", formats=("csv",))
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(inner, "exports/inner.zip")
        zf.writestr("__MACOSX/._inner.zip", b"\x00\x05\x16\x07")
        zf.writestr("exports/", b"")
    rows, notices = collect(outer)
    assert list(rows) == ["outer.zip/exports/inner.zip/contacts_1.csv"]
    assert len(rows["outer.zip/exports/inner.zip/contacts_1.csv"]) == 4
    assert notices == []


def test_zip_bomb_member_rejected_good_member_read(tmp_path: Path) -> None:
    p = tmp_path / "bomb.zip"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("good.csv", "email,name\na@x.com,Ann\n")
        zf.writestr("bomb.csv", b"0" * (40 << 20))  # ~1000:1
    got: list[str] = []
    notes: list[str] = []
    with pytest.raises(ReaderError, match=r"1 of 2 archive member\(s\) rejected.*zip bomb"):
        for b in arc.read(p, ReaderOptions()):
            if notice_of(b):
                notes.append(notice_of(b) or "")
            got += b.column("email").to_pylist() if b.num_rows else []
    assert got == ["a@x.com"]
    assert len(notes) == 1 and "compression ratio" in notes[0] and "bomb.csv" in notes[0]


def test_limits_checked_while_inflating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A gzip whose content is a zip (so it must be extracted): the ratio guard stops the copy
    # even though nothing declares a size up front.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("zeros.csv", b"\0" * (24 << 20))
    p = tmp_path / "pack.zip.gz"
    p.write_bytes(gzip.compress(buf.getvalue()))
    assert readers.detect(p) == "archive"
    with pytest.raises(arc.LimitExceeded, match="compression ratio"):
        list(arc.read(p, ReaderOptions()))
    # total-size budget across members (limit lowered for the test)
    monkeypatch.setattr(arc, "MAX_TOTAL_BYTES", 1 << 20)
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"p{i}.csv",
                        "id,email\n" + "".join(f"{j},u{j}@x.com\n" for j in range(40_000)))
    rows, notices = collect_partial(big)
    assert len(rows) == 1 and any("total uncompressed size" in n for _, n in notices)


def collect_partial(path: Path):
    rows: dict[str, list[dict]] = {}
    notices = []
    try:
        for b in arc.read(path, ReaderOptions()):
            if notice_of(b):
                notices.append((subsource_of(b), notice_of(b)))
            else:
                rows.setdefault(subsource_of(b) or "", []).extend(b.to_pylist())
    except ReaderError:
        pass
    return rows, notices


def test_encrypted_zip_member_rejected(tmp_path: Path) -> None:
    src = tmp_path / "secret.csv"
    src.write_text("id,email\n1,a@x.com\n")
    plain = tmp_path / "plain.csv"
    plain.write_text("id,email\n2,b@x.com\n")
    p = tmp_path / "enc.zip"
    subprocess.run(["zip", "-q", "-j", "-P", "pw", str(p), str(src)], check=True)
    subprocess.run(["zip", "-q", "-j", str(p), str(plain)], check=True)
    rows, notices = collect_partial(p)
    assert list(rows) == ["enc.zip/plain.csv"]
    assert notices == [("enc.zip/secret.csv",
                        "member rejected: secret.csv: member is encrypted (password-protected "
                        "zip)")]


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress,
                                      zstandard.ZstdCompressor().compress])
def test_compressed_workbook_goes_through_archive(tmp_path: Path, compress) -> None:
    book = write_xlsx(PEOPLE[:3], tmp_path / "c.xlsx")
    p = tmp_path / "c.xlsx.z"
    p.write_bytes(compress(book.read_bytes()))
    assert readers.detect(p) == "archive"
    rows, _ = collect(p)
    assert [r["E-Mail Address"] for r in rows["c.xlsx.z#Contacts"]] == [
        "u0@x.com", "u1@x.com", "u2@x.com"]


def test_truncated_and_garbage(tmp_path: Path) -> None:
    book = write_xlsx(PEOPLE[:3], tmp_path / "c.xlsx")
    p = tmp_path / "c.xlsx.gz"
    p.write_bytes(gzip.compress(book.read_bytes())[:-200])
    with pytest.raises(ReaderError, match="truncated or corrupt"):
        list(arc.read(p, ReaderOptions()))
    z = tmp_path / "cut.zip"
    z.write_bytes(write_zip(PEOPLE, tmp_path / "b.zip").read_bytes()[:300])
    with pytest.raises(ReaderError, match="corrupt zip"):
        list(arc.read(z, ReaderOptions()))
    g = tmp_path / "noise.bin"
    g.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(ReaderError, match="unrecognized format"):
        readers.detect(g)
    with pytest.raises(ReaderError, match="not an archive"):
        list(arc.read(g, ReaderOptions()))


def test_member_rejects_are_prefixed(tmp_path: Path) -> None:
    p = tmp_path / "d.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("dump.sql", "INSERT INTO people (email) VALUES ('a@x.com');\n"
                                "INSERT INTO people (email) VALUES ('b@x.com' 'c');\n")
    rejects = ReaderRejects()
    rows, _ = collect(p, rejects=rejects)
    assert [r["email"] for r in rows["d.zip/dump.sql#people"]] == ["a@x.com"]
    assert len(rejects.rows) == 1 and rejects.rows[0][2].startswith("d.zip/dump.sql: ")


def test_binary_database_dumps_get_a_conversion_hint(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "people.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (email TEXT)")
    with pytest.raises(ReaderError, match="sqlite3 FILE .dump"):
        readers.detect(db)
    custom = tmp_path / "pg.dump"
    custom.write_bytes(b"PGDMP\x01\x0e\x00\x04\x08\x01\x01" + bytes(200))
    with pytest.raises(ReaderError, match="pg_restore"):
        readers.detect(custom)


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "zst"])
def test_tar_members_are_sub_sources(tmp_path: Path, mode: str) -> None:
    import tarfile

    src = write_zip(PEOPLE[:6], tmp_path / "b.zip", formats=("csv", "xml")).parent
    csv_path = tmp_path / "people.csv"
    csv_path.write_text("email,name\na@x.com,Ann\nb@x.com,Bob\n")
    xlsx = write_xlsx(PEOPLE[:2], tmp_path / "c.xlsx")
    p = tmp_path / f"bundle.tar{'.' + mode[2:] if ':' in mode else ''}"
    with tarfile.open(p, "w" if mode == "zst" else mode) as tf:
        tf.add(csv_path, "export/people.csv")
        tf.add(xlsx, "export/c.xlsx")
        tf.add(src / "b.zip", "export/b.zip")
    if mode == "zst":  # tarfile cannot read zstd: the archive reader decompresses first
        p = p.rename(tmp_path / "bundle.tar.zst")
        p.write_bytes(zstandard.ZstdCompressor().compress(p.read_bytes()))
    assert readers.detect(p) == "archive"
    rows, notices = collect(p)
    name = p.name
    assert sorted(rows) == sorted([f"{name}/export/people.csv", f"{name}/export/c.xlsx#Contacts",
                                   f"{name}/export/b.zip/contacts_1.csv",
                                   f"{name}/export/b.zip/contacts_2.xml"])
    assert [r["email"] for r in rows[f"{name}/export/people.csv"]] == ["a@x.com", "b@x.com"]
    assert notices == []


def test_tar_bomb_is_rejected(tmp_path: Path) -> None:
    import tarfile

    big = tmp_path / "zeros.csv"
    with open(big, "wb") as f:
        f.write(b"id,email\n" + b"0" * (40 << 20))
    p = tmp_path / "bomb.tar.gz"
    with tarfile.open(p, "w:gz") as tf:
        tf.add(big, "zeros.csv")
    with pytest.raises(ReaderError, match="bomb protection"):
        list(arc.read(p, ReaderOptions()))
