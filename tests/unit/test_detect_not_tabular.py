"""Files that are not tables are quarantined with a reason instead of read as one-column CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from creditlake.readers.detect import UNRECOGNIZED, detect_format


@pytest.mark.parametrize("name,text,reason", [
    ("notes.txt", "Call Ann back on Monday about the renewal.\nShe prefers e-mail.\n",
     "not a table"),
    ("one_line.txt", "Just one line of prose.\n", "not a table"),
    ("bare_values.csv", "a@x.co\nb@y.co\n", "names no known field"),
    ("error.csv", "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
                  "<body>Bad gateway</body></html>\n", "HTML page"),
    ("login.csv", "<!-- proxy -->\n<html>\n<body>Please log in</body></html>", "HTML page"),
])
def test_not_tabular_is_quarantined(tmp_path: Path, name: str, text: str, reason: str):
    (tmp_path / name).write_text(text)
    fmt, why = detect_format(tmp_path / name)
    assert fmt == UNRECOGNIZED and reason in why


@pytest.mark.parametrize("text", ["email\na@x.co\nb@y.co\n", "Phone\n+1 212 555 0123\n",
                                  "email,name\n", "email,name\na@x.co,Ann\n"])
def test_real_tables_still_read(tmp_path: Path, text: str):
    (tmp_path / "t.csv").write_text(text)
    assert detect_format(tmp_path / "t.csv") == ("csv", "")


@pytest.mark.parametrize("name,text", [("null.json", "null"), ("n.json", "42\n"),
                                       ("s.jsonl", '"n/a"'), ("t.json.gz", "true")])
def test_a_json_file_that_is_one_value_says_so(tmp_path: Path, name: str, text: str):
    """`null` or `42` in a .json file is a JSON document without records, not a one-column
    table whose header names no field."""
    p = tmp_path / name
    if name.endswith(".gz"):
        import gzip

        p.write_bytes(gzip.compress(text.encode()))
    else:
        p.write_text(text)
    fmt, why = detect_format(p)
    assert fmt == UNRECOGNIZED
    assert why.startswith("JSON document holds no records: its whole content is one value, "
                          f"{text.strip()} ("), why
