"""A clean `creditlake ingest` prints its result and nothing else: no Dagster PreviewWarning,
no library log lines (issue 16). Runs the installed command in a fresh process and home."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_clean_ingest_prints_no_warnings(tmp_path: Path) -> None:
    src = tmp_path / "people.csv"
    src.write_text("email,name,phone,country\nann@example.com,Ann,+1 555 0100,US\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDITLAKE_", "DAGSTER_"))}
    env["CREDITLAKE_HOME"] = str(tmp_path / "home")
    cmd = [str(Path(sys.executable).with_name("creditlake")), "ingest", str(src), "--json"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # not even a blank line
    doc = json.loads(out.stdout)
    assert doc["totals"]["loaded"] == 1


# The whole command in a fresh interpreter; at exit, which heavy packages it imported.
PROBE = """
import atexit, sys
out, src = sys.argv[1:3]
atexit.register(lambda: open(out, "w").write(" ".join(
    m for m in ("pandas", "pyspark", "splink", "litestar") if m in sys.modules)))
sys.argv = ["creditlake", "ingest", src, "--json", "--no-resolve"]
from cli import main
main()
"""


def test_a_small_file_ingest_imports_no_pandas(tmp_path: Path) -> None:
    """pyarrow (the first array built), pandera (its first check) and chDB's Python() insert
    would each import pandas; an ingest of a small file needs none of them to (issue 16)."""
    src = tmp_path / "people.csv"
    src.write_text("email,name,phone,country\nann@example.com,Ann,+1 555 0100,US\n"
                   "bad,Bob,,\n")  # a rejected row too: the dead-letter path
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDITLAKE_", "DAGSTER_"))}
    env["CREDITLAKE_HOME"] = str(tmp_path / "home")
    seen = tmp_path / "imported.txt"
    out = subprocess.run([sys.executable, "-c", PROBE, str(seen), str(src)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert json.loads(out.stdout)["totals"] == {"rows_read": 2, "loaded": 1, "duplicates": 0,
                                                "rejected": 1, "held": 0, "files": 1}
    assert out.stderr == ""  # not even a blank line
    assert seen.read_text() == ""
