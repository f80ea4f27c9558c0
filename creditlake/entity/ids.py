"""Stable entity ids across runs, and the merges/splits that change them.

Rule (documented in the README): when entities merge, the smallest of their ids survives;
an id is never reused for another person. A full re-link maps every new cluster onto the
previous ids: each previous entity is kept by the new cluster that holds most of its
members (tie: the cluster with the smallest member id); a cluster keeping several previous
ids survives under the smallest and absorbs the others (`merge`); the other parts of a
previous entity that broke up get new ids (`split`). A cluster with no previous id is named
by its smallest member id, unless that id names or once named an entity (then by a digest of
its member ids): an id never comes back for someone else. Incremental runs only ever merge;
their survivor follows the same smallest-id rule.
"""

from __future__ import annotations

import contextlib

import duckdb
import pyarrow as pa

HISTORY_EVENTS = ("merge", "split")
EVENT_SCHEMA = pa.schema([("entity_id", pa.string()), ("other_id", pa.string()),
                          ("event", pa.string())])


def no_events() -> pa.Table:
    return EVENT_SCHEMA.empty_table()


def stable_ids(con: duckdb.DuckDBPyConnection, assign: pa.Table, previous: pa.Table,
               retired: pa.Table | None = None) -> tuple[pa.Table, pa.Table]:
    """(assign with entity_id mapped onto previous ids, history events).

    `assign`: record_id, entity_id (a cluster key), cluster_size, match_probability.
    `previous`: record_id, entity_id of the last run (empty on the first run).
    `retired`: alias_id of ids that named entities before (never handed out again).
    Events: entity_id (the absorbed or split-off id), other_id, event in HISTORY_EVENTS.
    """
    if previous.num_rows == 0:
        return assign, no_events()
    con.register("__assign", assign)
    con.register("__prev", previous.select(["record_id", "entity_id"]))
    con.register("__retired", retired if retired is not None and retired.num_rows
                 else pa.table({"alias_id": pa.array([], pa.string())}))
    try:
        con.execute("""
            CREATE OR REPLACE TEMP TABLE __ids AS
            WITH overlap AS (
                SELECT p.entity_id AS old, a.entity_id AS cluster, count(*) AS n,
                       min(a.record_id) AS first_member
                FROM __assign a JOIN __prev p USING (record_id) GROUP BY ALL
            ), keeper AS (  -- each old id goes to the cluster with most of its members
                SELECT old, cluster FROM overlap
                QUALIFY row_number() OVER (PARTITION BY old ORDER BY n DESC, first_member) = 1
            ), survivor AS (
                SELECT cluster, min(old) AS kept FROM keeper GROUP BY cluster
            ), clusters AS (
                SELECT entity_id AS cluster, min(record_id) AS first_member,
                       md5(string_agg(record_id, ',' ORDER BY record_id)) AS digest
                FROM __assign GROUP BY entity_id
            ), used AS (SELECT entity_id AS id FROM __prev
                        UNION SELECT alias_id FROM __retired)
            SELECT c.cluster,
                   coalesce(s.kept,
                            CASE WHEN c.first_member IN (SELECT id FROM used)
                                 THEN c.digest ELSE c.first_member END) AS new_id
            FROM clusters c LEFT JOIN survivor s USING (cluster)
        """)
        mapped = con.sql("""
            SELECT a.record_id, i.new_id AS entity_id, a.cluster_size, a.match_probability
            FROM __assign a JOIN __ids i ON i.cluster = a.entity_id
        """).to_arrow_table()
        events = con.sql("""
            WITH overlap AS (
                SELECT p.entity_id AS old, i.new_id, count(*) AS n, min(a.record_id) AS fm
                FROM __assign a JOIN __prev p USING (record_id)
                JOIN __ids i ON i.cluster = a.entity_id GROUP BY ALL
            ), ranked AS (
                SELECT *, row_number() OVER (PARTITION BY old ORDER BY n DESC, fm) AS rk
                FROM overlap
            )
            SELECT old AS entity_id, new_id AS other_id, 'merge' AS event FROM ranked
            WHERE rk = 1 AND old != new_id
            UNION ALL
            SELECT new_id, old, 'split' FROM ranked WHERE rk > 1 AND old != new_id
            ORDER BY 1, 2
        """).to_arrow_table()
        return mapped, events
    finally:
        for name in ("__assign", "__prev", "__retired"):
            with contextlib.suppress(Exception):
                con.unregister(name)
        con.execute("DROP TABLE IF EXISTS __ids")
