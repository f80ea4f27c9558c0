"""DuckDB spills into the entity run's directory under home, never into the CWD, and the
directory is gone after the run, also when the run fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from creditlake.entity import duck, linking
from creditlake.entity.prepare import prepare


def _spill_setting(con) -> str:  # noqa: ANN001 - a DuckDB connection
    return con.sql("SELECT current_setting('temp_directory')").fetchall()[0][0]


def _force_spill(con) -> None:  # noqa: ANN001
    """A sort far above the memory limit: DuckDB must write temp files to finish it."""
    con.execute("SET memory_limit = '40MB'")
    con.execute("SET threads = 1")
    con.execute("CREATE TEMP TABLE big AS SELECT range AS i, md5(range::VARCHAR) AS s"
                " FROM range(3000000) ORDER BY s")


def test_connections_spill_into_the_run_directory(tmp_path: Path, monkeypatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    run_dir = duck.run_spill_dir(tmp_path / "home", "run1")
    seen: list[str] = []
    with duck.spill_directory(run_dir):
        for con in (duck.connect(), linking.duckdb_connection("1GB")):
            assert Path(_spill_setting(con)) == run_dir
        con = duck.connect()
        _force_spill(con)
        seen = [p.name for p in run_dir.rglob("*")]
        con.close()
    assert seen, "the sort did not spill: the test proves nothing"
    assert not run_dir.exists()
    assert list(cwd.iterdir()) == []


def test_the_run_directory_is_removed_when_the_run_fails(tmp_path: Path) -> None:
    run_dir = duck.run_spill_dir(tmp_path / "home", "run2")
    with pytest.raises(RuntimeError), duck.spill_directory(run_dir):
        duck.connect().execute("SELECT 1")
        raise RuntimeError("the run died")
    assert not run_dir.exists()


def test_outside_a_run_connections_spill_into_the_system_temp_dir(tmp_path: Path,
                                                                   monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    spill = Path(_spill_setting(duck.connect()))
    assert spill.is_absolute() and tmp_path not in spill.parents and spill != tmp_path
    # prepare's own connection (no `con` passed) follows the same rule
    import pyarrow as pa

    records = pa.table({c: pa.array([None], pa.string()) for c in (
        "id", "email", "name", "phone", "address", "city", "country", "created_date",
        "user_id", "source_file", "ingested_at", "metadata")})
    assert prepare(records).num_rows == 1
    assert list(tmp_path.iterdir()) == []
