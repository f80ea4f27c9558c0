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
    assert out.stderr.strip() == ""
    doc = json.loads(out.stdout)
    assert doc["totals"]["loaded"] == 1
