"""The CLI's Dagster instance (issue 16): its dagster.yaml names resources/dagster_storage.py,
which keeps connections open, and what it writes is Dagster's own SQLite layout - the stock
storage (what a plain `dagster` install would use) reads the same runs and per-file partitions."""

import os
import sqlite3

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.storage.event_log.schema import SqlEventLogStorageMetadata
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.sql import check_alembic_revision, get_alembic_config
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage

from cli.runner import _OLD_DAGSTER_YAMLS, dagster_home, ingest_with_dagster
from resources.dagster_storage import LocalStorage, _head_revision

pytestmark = pytest.mark.integration


@pytest.fixture
def home_env(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    yield
    os.environ.pop("DAGSTER_HOME", None)


def test_cli_instance_is_dagsters_sqlite_layout(settings, home_env, tmp_path):
    dhome = dagster_home(settings)
    instance = dg.DagsterInstance.get()
    assert isinstance(instance.get_ref().storage_data.rehydrate(object), LocalStorage)
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        (d / f"p{i}.csv").write_text(f"email,name\nu{i}@example.com,User {i}\n")
    results = ingest_with_dagster(settings, [d], instance=instance)
    assert [str(r.manifest.status) for r in results] == ["loaded"] * 3
    instance.dispose()

    head = _head_revision()  # each run database is stamped as Dagster's _initdb stamps it
    assert head == check_alembic_revision(get_alembic_config(sqlite_event_log.__file__),
                                          _any_connection(dhome))[1]
    reference = tmp_path / "reference.db"  # the tables and indexes Dagster's create_all makes
    SqlEventLogStorageMetadata.create_all(sa.create_engine(f"sqlite:///{reference}"))
    run_dbs = [db for db in (dhome / "history" / "runs").glob("*.db") if db.name != "index.db"]
    assert len(run_dbs) == 2  # the land run and the ingest run
    for db in (dhome / "history" / "runs").glob("*.db"):
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]
    for db in run_dbs:
        assert _schema(db) == _schema(reference)
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)

    stock = DagsterSqliteStorage.from_local(str(dhome))  # what the stock classes see
    try:
        runs = stock.run_storage.get_runs()
        assert {r.run_id for r in results} <= {r.run_id for r in runs}  # + the land run
        assert runs and all(r.is_success for r in runs)
        mats = stock.event_log_storage.get_materialized_partitions(
            dg.AssetKey(["dedup", "records"]))
        assert mats == {r.manifest.key for r in results}
        for r in results:  # each partition's event holds its own file's metadata
            records = stock.event_log_storage.get_event_records(dg.EventRecordsFilter(
                event_type=dg.DagsterEventType.ASSET_MATERIALIZATION,
                asset_key=dg.AssetKey(["dedup", "records"]),
                asset_partitions=[r.manifest.key]))
            assert len(records) == 1
            meta = records[0].asset_materialization.metadata
            assert meta["source_file"].value == r.manifest.source_file
            assert meta["loaded"].value == 1 and meta["batch_files"].value == 3
    finally:
        stock.dispose()


def _schema(db) -> set[tuple]:
    """Dagster's tables and indexes in a database (the alembic stamp aside)."""
    with sqlite3.connect(db) as conn:
        return {row for row in conn.execute("SELECT type, name, sql FROM sqlite_master")
                if "alembic_version" not in row[1]}


def _any_connection(dhome):
    return sa.create_engine(f"sqlite:///{dhome / 'history' / 'runs' / 'index.db'}").connect()


def test_an_old_default_dagster_yaml_is_upgraded(settings, home_env):
    cfg = settings.home / "dagster" / "dagster.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(_OLD_DAGSTER_YAMLS[0])
    dagster_home(settings)
    assert "resources.dagster_storage" in cfg.read_text()
    cfg.write_text("telemetry:\n  enabled: false\n")  # the user's own: left alone
    dagster_home(settings)
    assert cfg.read_text() == "telemetry:\n  enabled: false\n"


def test_stamped_storages_open_without_parsing_the_migrations(tmp_path, monkeypatch):
    """A home's runs.db and schedules.db, once created and stamped, are opened without
    Dagster's check_alembic_revision (it parses ~90 migration scripts per storage); an
    unstamped database still goes through Dagster's own from_local."""
    from dagster._core.storage.runs.sqlite import sqlite_run_storage
    from dagster._core.storage.schedules.sqlite import sqlite_schedule_storage

    from resources.dagster_storage import _stamped

    base = tmp_path / "dagster"
    LocalStorage(str(base)).dispose()  # creates and stamps everything
    runs_db, schedules_db = base / "history" / "runs.db", base / "schedules" / "schedules.db"
    assert _stamped(str(runs_db), "runs", "instance_info") and _stamped(str(schedules_db))
    assert not _stamped(str(tmp_path / "missing.db"))

    def no_parse(*_args):
        raise AssertionError("migration scripts parsed")

    for module in (sqlite_run_storage, sqlite_schedule_storage):
        monkeypatch.setattr(module, "check_alembic_revision", no_parse)
    storage = LocalStorage(str(base))
    assert storage.run_storage.get_runs() == []
    storage.dispose()

    with sqlite3.connect(runs_db) as conn:  # unstamped: Dagster's from_local (it parses)
        conn.execute("DELETE FROM alembic_version")
    assert not _stamped(str(runs_db), "runs", "instance_info")
    with pytest.raises(AssertionError, match="migration scripts parsed"):
        LocalStorage(str(base))
    monkeypatch.undo()
    LocalStorage(str(base)).dispose()
    assert _stamped(str(runs_db), "runs", "instance_info")  # stamped again by Dagster
