"""`creditlake serve` with a dependency down exits at once naming it and the fix."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("var", "url", "words"), [
    ("CREDITLAKE_DATABASE_URL", "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/x",
     "ledger database is unreachable"),
    ("CREDITLAKE_CLICKHOUSE_URL", "http://u:s3cret@127.0.0.1:1", "ClickHouse is unreachable"),
])
def test_serve_names_the_dependency_that_is_down(tmp_path, var, url, words):
    env = {**os.environ, "CREDITLAKE_HOME": str(tmp_path), var: url, "COLUMNS": "400"}
    p = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "serve"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert words in p.stderr and var in p.stderr
    assert "s3cret" not in p.stderr + p.stdout
