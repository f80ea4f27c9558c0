"""ON CLUSTER DDL for a sharded + replicated ClickHouse: Replicated*MergeTree local tables
behind Distributed tables that keep the embedded names (`records`, ...), so every query and
insert in creditlake runs unchanged against a cluster.

The statements are derived from `creditlake.clickhouse.ddl.table_ddl()` (columns, indexes, ORDER BY,
engine, settings): the cluster can never drift from the embedded schema.

Sharding and partitioning (why):
- records are sharded by `cityHash64(record_hash)`. A given identity always lands on the same
  shard, so the dedup check ("does this record_hash exist?") and ReplacingMergeTree's merge
  collapse stay shard-local; region (country) sharding would split one identity across shards
  whenever sources disagree on (or lack) its country, and it skews badly (a few countries hold
  most rows). The price: a country filter fans out to every shard, where the primary key
  (country, created_date, ...) prunes it to a few granules each — a cheap parallel scan.
- records are partitioned by year of created_date (0 = unknown). created_date is in the sorting
  key, so rows that ReplacingMergeTree must collapse always share a partition, range filters
  on created_date prune whole partitions, and ~30-60 partitions stay far below the part-count
  limits even at 700M rows (monthly partitions would multiply small parts per insert).
- rejected_records: sharded and partitioned so one file's dead letters stay together (replay
  and per-file counts are shard-local) and old months can be dropped.
- ingestion_log: sharded by partition_key so its ReplacingMergeTree(finished_at) collapses
  re-runs of one file version on one shard.
- record_hashes: each node's view copies the hashes of its own records_local rows into its
  record_hashes_local, so they sit on their records' shard; the Distributed table is read
  (the load's anti-join reads every shard), and its sharding key only routes direct inserts.
"""

from __future__ import annotations

import re
import sys
import weakref
from collections.abc import Iterable
from dataclasses import dataclass

from creditlake.clickhouse.base import Engine
from creditlake.clickhouse.ddl import hashes_view_ddl, table_ddl
from creditlake.config import DEFAULT_CLUSTER

__all__ = ["DEFAULT_CLUSTER", "cluster_ddl", "delete_target", "migrate_cluster", "table_engine"]
LOCAL_SUFFIX = "_local"
# ZooKeeper/Keeper path per shard; {database}/{table} are expanded by ClickHouse itself.
KEEPER_PATH = "/clickhouse/tables/{shard}/{database}/{table}"
REPLICA_NAME = "{replica}"


@dataclass(frozen=True)
class Layout:
    sharding_key: str
    partition_by: str | None


LAYOUT: dict[str, Layout] = {
    "records": Layout("cityHash64(record_hash)", "ifNull(toYear(created_date), 0)"),
    "rejected_records": Layout("cityHash64(partition_key)", "toYYYYMM(rejected_at)"),
    "ingestion_log": Layout("cityHash64(partition_key)", None),
    "record_hashes": Layout("cityHash64(hash)", None),
}

_CREATE = re.compile(
    r"^CREATE TABLE IF NOT EXISTS (?P<name>\S+) \((?P<body>.*)\)\s+ENGINE = "
    r"(?P<engine>\w+)(?:\((?P<args>[^)]*)\))? ORDER BY (?P<order>.+?)"
    r"(?: SETTINGS (?P<settings>.+))?$",
    re.DOTALL,
)


@dataclass(frozen=True)
class TableParts:
    """One embedded CREATE TABLE split into the pieces the cluster DDL re-assembles."""

    table: str
    body: str  # columns + indexes, as in ddl.py
    engine: str  # e.g. ReplacingMergeTree
    engine_args: str  # e.g. ingested_at ("" for MergeTree)
    order_by: str
    settings: str | None


def embedded_parts(database: str) -> dict[str, TableParts]:
    """Parse ddl.table_ddl() so the cluster tables reuse its exact definitions."""
    parts: dict[str, TableParts] = {}
    for table, sql in table_ddl(database).items():
        m = _CREATE.match(sql.strip())
        if m is None:  # ddl.py changed shape: fail loudly rather than drift
            raise ValueError(f"cannot derive cluster DDL from ddl.table_ddl()[{table!r}]")
        parts[table] = TableParts(
            table=table, body=m["body"].strip(), engine=m["engine"],
            engine_args=(m["args"] or "").strip(), order_by=m["order"].strip(),
            settings=m["settings"],
        )
    return parts


def replicated_engine(engine: str, engine_args: str) -> str:
    """ReplacingMergeTree(v) -> ReplicatedReplacingMergeTree('<keeper path>', '{replica}', v)."""
    args = [f"'{KEEPER_PATH}'", f"'{REPLICA_NAME}'"] + ([engine_args] if engine_args else [])
    return f"Replicated{engine}({', '.join(args)})"


def _on_cluster(cluster: str | None) -> str:
    return f" ON CLUSTER '{cluster}'" if cluster else ""


def local_table_ddl(database: str, parts: TableParts, *, cluster: str | None,
                    replicated: bool = True) -> str:
    """The per-node table. replicated=False gives the plain engine (for the embedded test)."""
    lay = LAYOUT[parts.table]
    engine = (replicated_engine(parts.engine, parts.engine_args) if replicated
              else f"{parts.engine}({parts.engine_args})")
    sql = (f"CREATE TABLE IF NOT EXISTS {database}.{parts.table}{LOCAL_SUFFIX}"
           f"{_on_cluster(cluster)} (\n    {parts.body}\n) ENGINE = {engine}")
    if lay.partition_by:
        sql += f" PARTITION BY {lay.partition_by}"
    sql += f" ORDER BY {parts.order_by}"
    if parts.settings:
        sql += f" SETTINGS {parts.settings}"
    return sql


def distributed_table_ddl(database: str, table: str, *, cluster: str,
                          on_cluster: bool = True) -> str:
    """The cluster-wide table with the embedded name; reads fan out, inserts route by key."""
    return (f"CREATE TABLE IF NOT EXISTS {database}.{table}"
            f"{_on_cluster(cluster if on_cluster else None)}"
            f" AS {database}.{table}{LOCAL_SUFFIX}"
            f" ENGINE = Distributed('{cluster}', '{database}', '{table}{LOCAL_SUFFIX}',"
            f" {LAYOUT[table].sharding_key})")


def column_defs(parts: TableParts) -> list[str]:
    """'name Type' for every column of the body (index lines excluded)."""
    lines = [ln.strip().rstrip(",") for ln in parts.body.splitlines()]
    return [ln for ln in lines if ln and not ln.startswith(("INDEX ", "PROJECTION "))]


def add_column_ddl(database: str, parts: TableParts, *, cluster: str | None) -> list[str]:
    """ALTERs mirroring ddl.migrate(): columns added after a table was first created are added
    to the local tables first, then to the Distributed table (which must not lead)."""
    return [
        f"ALTER TABLE {database}.{parts.table}{suffix}{_on_cluster(cluster)}"
        f" ADD COLUMN IF NOT EXISTS {col}"
        for suffix in (LOCAL_SUFFIX, "") for col in column_defs(parts)
    ]


def cluster_ddl(database: str, cluster: str = DEFAULT_CLUSTER, *,
                on_cluster: bool = True) -> list[str]:
    """Every statement of the cluster migration, in execution order. Idempotent.

    on_cluster=False drops the ON CLUSTER clauses (run the same DDL node by node, e.g. from
    an operator's init script, or on a one-node test harness).
    """
    parts = embedded_parts(database)
    oc = cluster if on_cluster else None
    stmts = [f"CREATE DATABASE IF NOT EXISTS {database}{_on_cluster(oc)}"]
    stmts += [local_table_ddl(database, p, cluster=oc) for p in parts.values()]
    stmts.append(hashes_view_ddl(database, source=f"records{LOCAL_SUFFIX}",
                                 target=f"record_hashes{LOCAL_SUFFIX}", on_cluster=_on_cluster(oc)))
    stmts += [distributed_table_ddl(database, t, cluster=cluster, on_cluster=on_cluster)
              for t in parts]
    stmts += add_column_ddl(database, parts["records"], cluster=oc)
    return stmts


def migrate_cluster(engine: Engine, cluster: str = DEFAULT_CLUSTER,
                    statements: Iterable[str] | None = None) -> int:
    """Run the cluster migration through a server engine (one node runs ON CLUSTER for all).

    distributed_ddl_task_timeout bounds the wait for every replica to apply each statement.
    """
    n = 0
    for sql in statements or cluster_ddl(engine.database, cluster):
        engine.command(sql, settings={"distributed_ddl_task_timeout": 300})
        n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    """`python -m creditlake.clickhouse.ddl_cluster [--apply] [--cluster NAME]`: print or run
    the DDL.

    --apply connects through CREDITLAKE_CLICKHOUSE_URL (any node of the cluster).
    """
    import argparse

    from creditlake.clickhouse import open_engine
    from creditlake.config import load_settings

    ap = argparse.ArgumentParser(prog="python -m creditlake.clickhouse.ddl_cluster")
    ap.add_argument("--cluster", default=None,
                    help=f"default: CREDITLAKE_CLICKHOUSE_CLUSTER or {DEFAULT_CLUSTER!r}")
    ap.add_argument("--apply", action="store_true", help="run it instead of printing it")
    args = ap.parse_args(argv)
    settings = load_settings()
    args.cluster = args.cluster or settings.clickhouse_cluster
    if not args.apply:
        print(";\n\n".join(cluster_ddl(settings.clickhouse_database, args.cluster)) + ";")
        return 0
    if settings.embedded:
        print("error: --apply needs CREDITLAKE_CLICKHOUSE_URL=http(s)://<node>:8123",
              file=sys.stderr)
        return 2
    engine = open_engine(settings)
    try:
        n = migrate_cluster(engine, args.cluster)
    finally:
        engine.close()
    print(f"applied {n} statements on cluster {args.cluster!r}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())


# handle -> {(database, table): table engine}; weak, so a closed handle's answers go with it
_TABLE_ENGINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def delete_target(engine: Engine, table: str) -> str:
    """Where a DELETE for `table` must go: the table itself, or - on a cluster, where `table`
    is a Distributed table over `<table>_local` - the local tables on every node. Lightweight
    deletes don't run through Distributed tables."""
    return delete_target_for(table_engine(engine, table), engine.database, table, engine.cluster)


def table_engine(engine: Engine, table: str) -> str:
    """The engine of `table` in the handle's database ('' if it does not exist yet), looked
    up once per handle and table (a batch of files deletes ~3 times per file)."""
    try:
        known = _TABLE_ENGINES.setdefault(engine, {})
    except TypeError:  # a handle that cannot be weakly referenced: look it up every time
        known = {}
    name = known.get((engine.database, table))
    if name is None:
        rows = engine.query_rows("SELECT engine FROM system.tables WHERE database = {d:String} "
                                 "AND name = {t:String}", {"d": engine.database, "t": table})
        name = rows[0][0] if rows else ""
        if name:  # a table not created yet is looked up again
            known[(engine.database, table)] = name
    return name


def delete_target_for(table_engine: str, database: str, table: str, cluster: str) -> str:
    if table_engine == "Distributed":
        return f"{database}.{table}{LOCAL_SUFFIX} ON CLUSTER '{cluster}'"
    return f"{database}.{table}"
