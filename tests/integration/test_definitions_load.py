"""The code location loads the way the Dagster webserver and daemon load it (workspace.yaml):
a definition error there leaves the UI empty and the landing sensor dead, while in-process
job runs (the CLI) can still work - so it needs its own test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_workspace_code_location_validates(tmp_path: Path) -> None:
    env = {**os.environ, "CREDITLAKE_HOME": str(tmp_path / "home"),
           "DAGSTER_HOME": str(tmp_path / "dagster")}
    (tmp_path / "dagster").mkdir()
    out = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions",
                          "validate", "-w", str(ROOT / "workspace.yaml")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "All code locations passed validation" in out.stdout + out.stderr
