"""Cluster DDL: generated text, the plain-engine equivalent on the embedded engine, and the real
Replicated/Distributed statements on a chDB node configured like a cluster member (macros,
in-memory Keeper, a 2-shard `remote_servers` entry) in a subprocess with its own data path.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa

from creditlake.clickhouse.ddl import RECORDS_INDEXES, RECORDS_ORDER_BY, table_ddl
from creditlake.clickhouse.ddl_cluster import (
    LAYOUT,
    cluster_ddl,
    column_defs,
    embedded_parts,
    local_table_ddl,
)
from creditlake.schema import RECORD_COLUMNS


def test_parts_round_trip_the_embedded_ddl() -> None:
    parts = embedded_parts("db")
    assert set(parts) == set(table_ddl("db"))
    rec = parts["records"]
    assert (rec.engine, rec.engine_args, rec.order_by) == (
        "ReplacingMergeTree", "ingested_at", RECORDS_ORDER_BY)
    assert all(idx in rec.body for idx in RECORDS_INDEXES)
    names = [c.split()[0] for c in column_defs(rec)]
    assert names[: len(RECORD_COLUMNS)] == [c.name for c in RECORD_COLUMNS]
    assert parts["rejected_records"].engine == "MergeTree"
    assert parts["ingestion_log"].engine_args == "finished_at"


def test_generated_cluster_ddl_text() -> None:
    stmts = cluster_ddl("cl", "prod")
    assert stmts[0] == "CREATE DATABASE IF NOT EXISTS cl ON CLUSTER 'prod'"
    creates = [s for s in stmts if s.startswith("CREATE TABLE")]
    assert len(creates) == 8
    assert all(" ON CLUSTER 'prod'" in s for s in stmts)
    rec_local = next(s for s in creates if "cl.records_local" in s.split("(")[0])
    assert ("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/"
            "{table}', '{replica}', ingested_at)") in rec_local
    assert f"PARTITION BY {LAYOUT['records'].partition_by} ORDER BY {RECORDS_ORDER_BY}" in rec_local
    assert all(idx in rec_local for idx in RECORDS_INDEXES)
    assert "allow_nullable_key = 1" in rec_local
    assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')" \
        in next(s for s in creates if "rejected_records_local" in s)
    dist = next(s for s in creates if s.startswith("CREATE TABLE IF NOT EXISTS cl.records "))
    assert dist.endswith(
        "AS cl.records_local ENGINE = Distributed('prod', 'cl', 'records_local',"
        " cityHash64(record_hash))")
    # local tables exist before the Distributed tables that point at them
    order = [s.split()[5] for s in creates]
    assert order.index("cl.records_local") < order.index("cl.records")
    view = next(s for s in stmts if s.startswith("CREATE MATERIALIZED VIEW"))
    assert view.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS cl.records_to_hashes "
                           "ON CLUSTER 'prod' TO cl.record_hashes_local AS SELECT ")
    assert view.endswith("FROM cl.records_local")
    assert stmts.index(view) > stmts.index(next(s for s in creates if "record_hashes_local" in s))
    alters = [s for s in stmts if s.startswith("ALTER")]
    assert "ALTER TABLE cl.records_local ON CLUSTER 'prod' ADD COLUMN IF NOT EXISTS " \
        "email String" in alters
    assert cluster_ddl("cl", "prod", on_cluster=False)[0] == "CREATE DATABASE IF NOT EXISTS cl"


def test_plain_equivalent_runs_on_embedded_engine(engine) -> None:
    """Same columns/ORDER BY/partitioning with the non-replicated engine: dedup within the
    partition key works, and the sharding key evaluates over the stored rows."""
    db = engine.database
    for p in embedded_parts(db).values():
        engine.command(local_table_ddl(db, p, cluster=None, replicated=False))
        engine.command(local_table_ddl(db, p, cluster=None, replicated=False))  # idempotent
    view = next(s for s in cluster_ddl(db, on_cluster=False)
                if s.startswith("CREATE MATERIALIZED VIEW"))
    engine.command(view.replace("records_to_hashes", "local_to_hashes"))  # the db has its own
    hashes = [f"{i:032x}" for i in range(6)]
    rows = pa.table({
        "id": [f"00000000-0000-4000-8000-{i:012d}" for i in range(8)],
        "source_file": ["a.csv"] * 8,
        "record_hash": hashes + hashes[:2],  # two re-loaded duplicates
        "country": ["US", "US", "DE", "DE", "FR", "FR", "US", "US"],
        "created_date": pa.array([0, 0, 400, 400, None, None, 0, 0], pa.int32()).cast(
            pa.date32()),
        "status": ["active"] * 8,
        "email": [f"u{i}@x.org" for i in range(6)] + ["u0@x.org", "u1@x.org"],
    })
    engine.insert_arrow(f"{db}.records_local", rows)
    engine.command(f"OPTIMIZE TABLE {db}.records_local FINAL")
    assert engine.query_rows(f"SELECT count() FROM {db}.records_local")[0][0] == 6
    # each node's view copied its rows' hashes into its own record_hashes_local
    assert engine.query_rows(f"SELECT uniqExact(hash), count() FROM {db}.record_hashes_local"
                             )[0] == (6, 8)
    parts = dict(engine.query_rows(
        f"SELECT partition, sum(rows) FROM system.parts WHERE database = '{db}'"
        " AND table = 'records_local' AND active GROUP BY partition"))
    assert parts == {"1970": 2, "1971": 2, "0": 2}
    shards = engine.query_rows(
        f"SELECT {LAYOUT['records'].sharding_key} % 2 AS s, count() FROM {db}.records_local"
        " GROUP BY s ORDER BY s")
    assert sum(n for _, n in shards) == 6
    for sql in cluster_ddl(db, on_cluster=False):  # the column ALTERs (ON CLUSTER dropped)
        if sql.startswith(f"ALTER TABLE {db}.records_local "):
            engine.command(sql)
    for t in ("rejected_records_local", "ingestion_log_local"):
        assert engine.query_rows(f"EXISTS TABLE {db}.{t}")[0][0] == 1


_NODE_CONFIG = """<clickhouse>
  <macros><shard>01</shard><replica>node-a</replica></macros>
  <zookeeper><implementation>testkeeper</implementation></zookeeper>
  <remote_servers><prod>
    <shard><internal_replication>true</internal_replication>
      <replica><host>127.0.0.1</host><port>9000</port></replica></shard>
    <shard><internal_replication>true</internal_replication>
      <replica><host>127.0.0.2</host><port>9000</port></replica></shard>
  </prod></remote_servers>
</clickhouse>
"""

# Runs in a child process: chDB allows one data path per process and the pytest process
# already holds the session's path. chDB (clickhouse-local) cannot run distributed DDL
# queues, so the ON CLUSTER clause is the only thing dropped here. Its in-memory Keeper
# accepts the tables but leaves them read-only, so data checks use the plain engine above.
_NODE_SCRIPT = textwrap.dedent("""
    import json, os, sys, chdb
    from creditlake.clickhouse.ddl_cluster import cluster_ddl
    data, cfg = sys.argv[1], sys.argv[2]
    con = chdb.connect(f"{data}?config-file={cfg}")
    q = lambda sql: con.query(sql, "JSONCompact")
    try:
        for _ in range(2):  # idempotent
            for sql in cluster_ddl("cl", "prod", on_cluster=False):
                if sql.startswith("CREATE"):  # ALTERs need a writable Keeper: tested above
                    q(sql)
    except Exception as exc:
        print(exc, file=sys.stderr, flush=True)
        os._exit(1)
    def rows(sql):
        return json.loads(str(q(sql)))["data"]
    print(json.dumps({
        "replicas": rows("SELECT table, zookeeper_path, replica_name FROM system.replicas"
                         " WHERE database = 'cl' ORDER BY table"),
        "engines": rows("SELECT name, engine FROM system.tables WHERE database = 'cl'"
                        " ORDER BY name"),
        "dist_cols": rows("SELECT count() FROM system.columns WHERE database = 'cl'"
                          " AND table = 'records'"),
        "local_cols": rows("SELECT count() FROM system.columns WHERE database = 'cl'"
                           " AND table = 'records_local'"),
    }), flush=True)
    os._exit(0)  # chDB's in-memory Keeper can hang interpreter shutdown
""")


def test_replicated_and_distributed_ddl_on_a_cluster_node(tmp_path: Path) -> None:
    cfg = tmp_path / "node.xml"
    cfg.write_text(_NODE_CONFIG)
    proc = subprocess.run(
        [sys.executable, "-c", _NODE_SCRIPT, str(tmp_path / "data"), str(cfg)],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == [
        ["ingestion_log_local", "/clickhouse/tables/01/cl/ingestion_log_local", "node-a"],
        ["record_hashes_local", "/clickhouse/tables/01/cl/record_hashes_local", "node-a"],
        ["records_local", "/clickhouse/tables/01/cl/records_local", "node-a"],
        ["rejected_records_local", "/clickhouse/tables/01/cl/rejected_records_local", "node-a"],
    ]
    engines = dict(map(tuple, out["engines"]))
    assert engines == {
        "ingestion_log": "Distributed", "ingestion_log_local": "ReplicatedReplacingMergeTree",
        "records": "Distributed", "records_local": "ReplicatedReplacingMergeTree",
        "rejected_records": "Distributed", "rejected_records_local": "ReplicatedMergeTree",
        "record_hashes": "Distributed", "record_hashes_local": "ReplicatedMergeTree",
        "records_to_hashes": "MaterializedView",
    }
    assert out["dist_cols"] == out["local_cols"]
