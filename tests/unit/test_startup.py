"""Start-up cost: what `creditlake ingest` imports before it needs it (issue 16).

Each check runs in a fresh interpreter, because this test process has imported everything."""

import json
import subprocess
import sys

import pytest

# Heavy packages no ingest of an ordinary file needs: Spark (PySpark backend), Splink with
# sqlglot/DuckDB (entity resolution), the API, Dagster's webserver; pandas/hypothesis are only
# pulled in by pandera's optional integrations.
HEAVY = ("pyspark", "splink", "sqlglot", "duckdb", "litestar", "api", "dagster_webserver",
         "pandas", "hypothesis")


def imported_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    return [m for m in HEAVY if m in loaded]


@pytest.mark.parametrize("code", [
    "import definitions",
    "import cli; cli._load()",
    "import creditlake.ingest.normalize.polars",  # pandera's polars backend
])
def test_nothing_heavy_is_imported(code: str) -> None:
    assert imported_after(code) == []


def test_polars_only_pandera_still_validates() -> None:
    """The same validation as test_normalize, in an interpreter where pandas was hidden."""
    code = """
import sys
import polars as pl
from creditlake.rules.mapping import infer_mapping
from creditlake.rules.polars import clean, map_columns
from creditlake.rules.validation import validate
assert "pandas" not in sys.modules
df = pl.DataFrame([{"email": "good@x.com", "user_id": None, "name": "A B", "country": "US"},
                   {"email": "bad", "user_id": None, "name": "C", "country": None}])
df = df.with_row_index("source_row", offset=1).with_columns(pl.col("source_row").cast(pl.UInt64))
v = validate(clean(map_columns(df, infer_mapping(df.columns), "t.csv")))
print(v.rejected.get_column("source_row").to_list(), v.valid.height)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split("\n")[-2] == "[2] 1"


def test_ledger_migrations_log_nothing_at_info(tmp_path) -> None:
    """The API's log at INFO has no alembic lines (plugins, "Context impl", "Will assume")."""
    code = f"""
import logging
logging.basicConfig(level=logging.INFO)
import sqlalchemy as sa
from creditlake.ledger.db import migrate
migrate(sa.create_engine("sqlite:///{tmp_path / 'ledger.db'}"))
print("migrated")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "migrated"
    assert "alembic" not in out.stderr
