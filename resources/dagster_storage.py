"""The Dagster instance's storage in a local home (`storage: custom:` in its dagster.yaml).

Dagster's own SQLite storage - the same files and schema under $DAGSTER_HOME (history/runs.db,
history/runs/<run>.db + index.db, schedules/), so the webserver, the daemon and plain `dagster`
commands read and write it as usual - with two changes that make an event cost ~1 ms instead
of 0.1-0.3 s (a ranged ingest run stores ~7 events per file, a one-file run ~40):

- one pooled SQLAlchemy engine per database, kept open, instead of a new engine, connection
  and close per event (each close of a database's last connection is a WAL checkpoint with
  its fsyncs);
- `PRAGMA synchronous=NORMAL` on the WAL databases (Dagster already creates them in WAL
  mode): a commit no longer waits for fsync. A crash of the process loses nothing; a power
  loss can lose the last events (not the data: ingestion_log in ClickHouse is the ledger).
"""

from __future__ import annotations

import functools
import itertools
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import SqlEventLogStorageMetadata
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sql import get_alembic_config
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS, create_db_conn_string
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from dagster._utils import mkdir_p
from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

OPEN_RUN_SHARDS = 4  # run databases kept open besides index.db (a process writes one at a time)
# Dagster hands a step's per-partition events (and a run's planned events) to the storage as
# one batch only when this is set; store_event_batch below then writes them in one
# transaction per database. An explicit setting wins.
EVENT_BATCH_SIZE = "1000"


def sqlite_engine(conn_string: str) -> sa.Engine:
    """A pooled engine whose connections stay open between uses, synchronous=NORMAL."""
    engine = sa.create_engine(conn_string, pool_size=2, max_overflow=8,
                              connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                                            "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DB-API connection
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    return engine


class EventLogStorage(SqliteEventLogStorage):
    """Dagster's run-sharded SQLite event log, with kept-open engines (see module doc)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, sa.Engine] = OrderedDict()
        self._tables: set[str] = set()
        super().__init__(base_dir, inst_data)

    def _initdb(self, engine: sa.Engine, for_index_shard: bool = False) -> None:
        """A run's database: Dagster's tables stamped with the head revision, as Dagster's
        _initdb does, without parsing the ~100 migration scripts again for every run (twice:
        to check, then to stamp). The index database and anything unusual: Dagster's own."""
        if for_index_shard:
            return super()._initdb(engine, for_index_shard=True)
        try:
            with engine.connect() as conn:
                if MigrationContext.configure(conn).get_current_revision():
                    return  # stamped: Dagster's _initdb leaves it as it is too
                conn.execute(sa.text("PRAGMA journal_mode=WAL;"))
                for statement in _run_db_ddl():
                    conn.exec_driver_sql(statement)
                conn.execute(sa.text("CREATE TABLE IF NOT EXISTS alembic_version (version_num "
                                     "VARCHAR(32) NOT NULL PRIMARY KEY)"))
                conn.execute(sa.text("INSERT INTO alembic_version VALUES (:v)"),
                             {"v": _head_revision()})
                conn.commit()
        except sa.exc.SQLAlchemyError:
            super()._initdb(engine)

    def has_table(self, table_name: str) -> bool:
        """Asked for every asset event (a new engine each time in Dagster's): tables that
        exist are remembered."""
        if table_name not in self._tables and super().has_table(table_name):
            self._tables.add(table_name)
        return table_name in self._tables

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Consecutive asset events of one run (a ranged step's materializations, a run's
        planned events) in one transaction per database, the asset key's row updated once
        per event type with the last one (what N updates in a row leave); others one by one."""
        for batchable, group in itertools.groupby(events, key=_batchable):
            group = list(group)
            if batchable and len(group) > 1 and len({e.run_id for e in group}) == 1:
                self._store_asset_events(group)
            else:
                for event in group:
                    self.store_event(event)

    def _store_asset_events(self, events: list[EventLogEntry]) -> None:
        inserts = [self.prepare_insert_event(e) for e in events]
        with self.run_connection(events[0].run_id) as conn:
            for statement in inserts:
                conn.execute(statement)
        with self.index_transaction() as conn:
            ids = []
            for statement in inserts:
                with db_result(conn, statement) as result:
                    ids.append(result.inserted_primary_key[0])
            self._store_asset_event_tags(conn, events, ids)
            last = {(e.get_dagster_event().asset_key, e.dagster_event_type): (i, e)
                    for i, e in zip(ids, events, strict=True)}
            for event_id, event in sorted(last.values(), key=lambda pair: pair[0]):
                self._store_asset_event(conn, event, event_id)

    def _engine(self, shard: str) -> sa.Engine:
        engine = self._engines.get(shard)
        if engine is None:
            engine = self._engines[shard] = sqlite_engine(self.conn_string_for_shard(shard))
            runs = [s for s in self._engines if s != "index"]
            for old in runs[:-OPEN_RUN_SHARDS]:
                self._engines.pop(old).dispose()
        else:
            self._engines.move_to_end(shard)
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sa.Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _close_engines(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self._close_engines()  # the run databases are deleted: no connection may outlive them
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._close_engines()


def _stamped(db: str, *tables: str) -> bool:
    """Whether Dagster's from_local would leave this database as it is: it carries an alembic
    revision (and the tables named). Read with sqlite3: check_alembic_revision parses Dagster's
    ~90 migration scripts for every storage it opens (~25-50 ms each)."""
    if not os.path.exists(db):
        return False
    try:
        with closing(sqlite3.connect(db, timeout=SQLITE_BUSY_TIMEOUT_SECONDS)) as conn:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if not {"alembic_version", *tables} <= names:
                return False
            return conn.execute("SELECT version_num FROM alembic_version").fetchone() is not None
    except sqlite3.Error:
        return False


class RunStorage(SqliteRunStorage):
    """Dagster's SQLite run storage (history/runs.db) on one kept-open engine."""

    def __init__(self, conn_string: str, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(conn_string, inst_data)
        self._kept_engine = sqlite_engine(conn_string)

    @classmethod
    def from_local(cls, base_dir: str, inst_data: ConfigurableClassData | None = None
                   ) -> RunStorage:
        if _stamped(os.path.join(base_dir, "runs.db"), "runs", "instance_info"):
            return cls(create_db_conn_string(base_dir, "runs"), inst_data)
        return super().from_local(base_dir, inst_data)  # creates, stamps, migrates

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        with self._kept_engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        super().dispose()
        self._kept_engine.dispose()


class ScheduleStorage(SqliteScheduleStorage):
    """Dagster's SQLite schedule storage (schedules/schedules.db), opened as RunStorage is."""

    @classmethod
    def from_local(cls, base_dir: str, inst_data: ConfigurableClassData | None = None
                   ) -> ScheduleStorage:
        if _stamped(os.path.join(base_dir, "schedules.db")):
            return cls(create_db_conn_string(base_dir, "schedules"), inst_data)
        return super().from_local(base_dir, inst_data)  # type: ignore[return-value]


@functools.cache
def _run_db_ddl() -> tuple[str, ...]:
    """What SqlEventLogStorageMetadata.create_all runs on a new run database, compiled once per
    process: create_all compiles it again and asks SQLite about every table first (40-100 ms
    per run, two runs per `creditlake ingest` batch)."""
    dialect = sqlite.dialect()
    ddl: list[str] = []
    for table in SqlEventLogStorageMetadata.sorted_tables:
        ddl.append(str(CreateTable(table).compile(dialect=dialect)))
        ddl.extend(str(CreateIndex(index).compile(dialect=dialect))
                   for index in sorted(table.indexes, key=lambda i: i.name or ""))
    return tuple(ddl)


@functools.cache
def _head_revision() -> str:
    script = ScriptDirectory.from_config(get_alembic_config(sqlite_event_log.__file__))
    return str(script.get_current_head())


def _batchable(event: EventLogEntry) -> bool:
    return bool(event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS
                and event.get_dagster_event().asset_key)


class LocalStorage(DagsterSqliteStorage):
    """DagsterSqliteStorage's layout under base_dir with the storages above."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)
        self.base_dir = base_dir
        self._run_storage = RunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = EventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = ScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,  # type: ignore[override]
                          config_value: dict) -> LocalStorage:
        base_dir = os.path.abspath(config_value["base_dir"])
        mkdir_p(base_dir)
        return cls(base_dir, inst_data=inst_data)
