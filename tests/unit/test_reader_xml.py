"""XML reader on documents written by xml.etree and lxml serializers."""

from __future__ import annotations

import bz2
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow as pa
import pytest

from creditlake import readers
from creditlake.readers import ReaderError, ReaderOptions
from creditlake.readers.xml import detect_record_element, looks_like_xml, read
from creditlake.samples_formats import write_xml

NS = "urn:example:crm"


def rows_of(path: Path, **kw) -> list[dict]:
    return [r for b in read(path, ReaderOptions(**kw)) for r in b.to_pylist()]


def etree_document(path: Path) -> Path:
    """A namespaced export written by the standard library serializer."""
    ET.register_namespace("crm", NS)
    root = ET.Element(f"{{{NS}}}export", {"generated": "2024-01-01"})
    meta = ET.SubElement(root, f"{{{NS}}}meta")
    ET.SubElement(meta, f"{{{NS}}}source").text = "crm"
    people = ET.SubElement(root, f"{{{NS}}}people")
    data = [
        ("1", "ann@example.com", "Ann & <Co> \"quoted\" 'single'", "Köln", ["+49 1", "+49 2"]),
        ("2", "", "Zoë 日本", None, []),
        ("3", "cy@example.com", "  spaced  \n second line", "Paris", ["+33 1"]),
    ]
    for pid, email, name, city, phones in data:
        p = ET.SubElement(people, f"{{{NS}}}person", {"id": pid, f"{{{NS}}}kind": "lead"})
        ET.SubElement(p, f"{{{NS}}}email").text = email
        ET.SubElement(p, f"{{{NS}}}name").text = name
        if city is not None:
            addr = ET.SubElement(p, f"{{{NS}}}address", {"type": "home"})
            ET.SubElement(addr, f"{{{NS}}}city").text = city
        for ph in phones:
            ET.SubElement(p, f"{{{NS}}}phone").text = ph
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def test_etree_document_namespaces_attributes_nesting(tmp_path: Path) -> None:
    p = etree_document(tmp_path / "export.xml")
    assert detect_record_element(p) == ("person", 2, False)
    rows = rows_of(p)
    assert rows[0] == {
        "id": "1", "kind": "lead", "email": "ann@example.com",
        "name": "Ann & <Co> \"quoted\" 'single'", "address.type": "home",
        "address.city": "Köln", "phone": "+49 1", "phone[2]": "+49 2", "source_row": 1,
    }
    # an empty element is an empty string; a missing one is null
    assert rows[1]["email"] == "" and rows[1]["address.city"] is None
    assert rows[1]["name"] == "Zoë 日本"
    assert rows[2]["name"] == "  spaced  \n second line"
    assert [r["source_row"] for r in rows] == [1, 2, 3]


def test_lxml_sample_writer_and_batches(tmp_path: Path) -> None:
    data = [{"E-Mail Address": f"u{i}@x.com", "Full Name": f"N {i}", "id": str(i)}
            for i in range(7)]
    data[3]["Phone #"] = "+1 555"
    p = write_xml(data, tmp_path / "c.xml", attributes=["id"])
    assert readers.detect(p) == "xml"
    batches = list(read(p, ReaderOptions(batch_rows=3)))
    assert [b.num_rows for b in batches] == [3, 3, 1]
    # the schema only grows: a batch carries every column seen so far
    assert batches[0].schema.names == ["id", "E-Mail_Address", "Full_Name", "source_row"]
    assert "Phone" in batches[1].schema.names and "Phone" in batches[2].schema.names
    rows = [r for b in batches for r in b.to_pylist()]
    assert [r["E-Mail_Address"] for r in rows] == [d["E-Mail Address"] for d in data]
    assert rows[3]["Phone"] == "+1 555" and rows[4]["Phone"] is None
    assert all(f.type == pa.string() for f in batches[0].schema if f.name != "source_row")


def test_record_element_option_and_nested_same_name(tmp_path: Path) -> None:
    p = tmp_path / "n.xml"
    p.write_text("<users><user><name>A</name><manager><user><name>Boss</name></user></manager>"
                 "</user><user><name>B</name></user></users>")
    rows = rows_of(p, record_element="user")
    assert [(r["name"], r.get("manager.user.name")) for r in rows] == [("A", "Boss"),
                                                                        ("B", None)]


def test_list_of_scalar_records(tmp_path: Path) -> None:
    p = tmp_path / "emails.xml"
    p.write_text("<emails><email>a@x.com</email><email>b@x.com</email></emails>")
    assert rows_of(p, record_element="email") == [
        {"email": "a@x.com", "source_row": 1}, {"email": "b@x.com", "source_row": 2}]


def test_truncated_xml_yields_good_records_then_error_with_line(tmp_path: Path) -> None:
    full = etree_document(tmp_path / "full.xml").read_text(encoding="utf-8")
    pretty = full.replace("><", ">\n<")
    cut = pretty.index("<crm:person id=\"3\"")  # the third record is cut off mid-way
    p = tmp_path / "cut.xml"
    p.write_text(pretty[: cut + 40], encoding="utf-8")
    got = []
    with pytest.raises(ReaderError, match=r"truncated or malformed at line \d+.*2 records"):
        for b in read(p, ReaderOptions()):
            got.extend(b.column("email").to_pylist())
    assert got == ["ann@example.com", ""]


def test_compressed_xml_is_streamed(tmp_path: Path) -> None:
    src = etree_document(tmp_path / "e.xml")
    p = tmp_path / "e.xml.bz2"
    p.write_bytes(bz2.compress(src.read_bytes()))
    assert readers.detect(p) == "xml"
    assert len(rows_of(p)) == 3


def test_garbage_and_non_xml(tmp_path: Path) -> None:
    p = tmp_path / "g.xml"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ReaderError, match="not well-formed XML"):
        list(read(p, ReaderOptions()))
    assert not looks_like_xml(b"email,name\n")
    assert not looks_like_xml(b"<!DOCTYPE html><html></html>")
    assert looks_like_xml(b"\xef\xbb\xbf<?xml version='1.0'?><a/>")
    assert looks_like_xml("<?xml version='1.0' encoding='utf-16'?><a/>".encode("utf-16"))
    assert looks_like_xml(b"<!-- c --><users/>")


def test_no_record_element(tmp_path: Path) -> None:
    p = tmp_path / "flat.xml"
    p.write_text("<root><a>1</a></root>")
    with pytest.raises(ReaderError, match="no record element"):
        list(read(p, ReaderOptions()))


def test_entities_are_not_expanded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    p = tmp_path / "xxe.xml"
    p.write_text(f"""<?xml version="1.0"?>
<!DOCTYPE users [
  <!ENTITY xxe SYSTEM "file://{secret}">
  <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<users><user><name>&xxe;</name><bio>&c;</bio></user><user><name>ok</name></user></users>""")
    rows = rows_of(p)
    assert len(rows) == 2 and rows[1]["name"] == "ok"
    assert "TOP-SECRET" not in str(rows) and "aaaa" not in str(rows)


def test_truncated_gzip_xml(tmp_path: Path) -> None:
    import gzip

    data = write_xml([{"email": f"u{i}@x.com", "name": f"N {i}"} for i in range(5000)],
                     tmp_path / "e.xml").read_bytes()
    p = tmp_path / "e.xml.gz"
    packed = gzip.compress(data)
    p.write_bytes(packed[: len(packed) // 2])
    got: list[str] = []
    with pytest.raises(ReaderError, match="compressed XML stream is truncated or corrupt"):
        for b in read(p, ReaderOptions()):
            got += b.column("email").to_pylist()
    # every record complete before the cut is read, none after it
    import zlib

    prefix = zlib.decompressobj(wbits=31).decompress(packed[: len(packed) // 2])
    assert len(got) == prefix.count(b"</contact>") > 1000
    assert got == [f"u{i}@x.com" for i in range(len(got))]


def test_key_value_fields_and_xsi_nil(tmp_path: Path) -> None:
    p = tmp_path / "kv.xml"
    p.write_text('<export xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
                 '<record><field name="E-Mail">a@x.com</field><field name="Phone" xsi:nil="true"/>'
                 '<city xsi:nil="true"/><tag name="vip">yes</tag></record>'
                 '<record><field name="E-Mail"></field><city>Rome</city></record></export>')
    assert rows_of(p) == [
        {"E-Mail": "a@x.com", "Phone": None, "city": None, "tag.name": "vip", "tag": "yes",
         "source_row": 1},
        {"E-Mail": "", "Phone": None, "city": "Rome", "tag.name": None, "tag": None,
         "source_row": 2}]


def test_utf16_attribute_only_records(tmp_path: Path) -> None:
    p = tmp_path / "u16.xml"
    p.write_bytes('<?xml version="1.0" encoding="UTF-16"?><rows><row id="1" email="a@b.c" '
                  'name="Jörg"/><row id="2" email="d@e.f"/></rows>'.encode("utf-16"))
    assert readers.detect(p) == "xml"
    assert rows_of(p) == [{"id": "1", "email": "a@b.c", "name": "Jörg", "source_row": 1},
                          {"id": "2", "email": "d@e.f", "name": None, "source_row": 2}]


@pytest.mark.parametrize("declaration", ['<?xml version="1.0" encoding="UTF-8"?>', ""])
def test_stray_latin1_bytes_in_utf8_xml_are_repaired(tmp_path: Path, declaration: str) -> None:
    """libxml2 refuses a UTF-8 document with one Latin-1 byte (the file was quarantined as
    "no record element found"); it is read as the CSV reader reads such bytes, as cp1252.
    A document that declares Latin-1 is left to libxml2."""
    people = "".join(f"<person><email>r{i}@x.co</email><name>Renée {i}</name></person>"
                     for i in range(3))
    p = tmp_path / "stray.xml"
    p.write_bytes(f"{declaration}<people>{people}</people>".encode("latin-1"))
    assert [r["name"] for r in rows_of(p)] == [f"Renée {i}" for i in range(3)]
    latin = tmp_path / "latin.xml"
    latin.write_bytes(f'<?xml version="1.0" encoding="ISO-8859-1"?><people>{people}</people>'
                      .encode("latin-1"))
    assert [r["name"] for r in rows_of(latin)] == [f"Renée {i}" for i in range(3)]
