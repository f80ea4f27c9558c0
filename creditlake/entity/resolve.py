"""Entity resolution against ClickHouse: full and incremental runs.

Full: read every record, link all of them with the model, cluster, rewrite `entities`,
`golden_records` and `entity_features`.
Incremental: only records not yet in `entities` are prepared; ClickHouse selects the resolved
records that share a blocking key with them (from `entity_features`), Splink scores new-vs-
existing (`predict_between`) and new-vs-new (`predict_within`) with term frequencies of the
whole table, and connected components run over the new edges plus the existing entities of
the touched records. Only the affected entities are rewritten; nothing else is re-scored.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from creditlake.clickhouse.base import Engine
from creditlake.entity import duck, linking
from creditlake.entity.ddl import migrate_entities
from creditlake.entity.explain import explain_pairs, size_distribution
from creditlake.entity.golden import write_golden
from creditlake.entity.history import retired_ids, write_events
from creditlake.entity.ids import no_events, stable_ids
from creditlake.entity.model import EntityModel, blocking_columns
from creditlake.entity.prepare import (
    FEATURE_COLUMNS,
    FREQUENT_KEYS,
    frequent_values_sql,
    prepare,
)

log = logging.getLogger(__name__)

RECORDS_SELECT = (
    "SELECT toString(id) AS id, email, name, phone, address, city, country, created_date,"
    " user_id, source_file, ingested_at, metadata, status, data_quality_score"
    " FROM {db}.records FINAL"
)
EDGE_COLUMNS = ["unique_id_l", "unique_id_r", "match_probability"]


@dataclass
class ResolveResult:
    mode: str
    run_id: str
    model_version: str
    records_in: int = 0
    candidates: int = 0
    pairs_scored: int = 0
    links: int = 0
    entities_changed: int = 0
    entities_merged_away: int = 0
    entities_split: int = 0
    # What the run refused to do, e.g. {"oversize_components": 1, "records_unlinked": 10000}
    skipped: dict[str, int] = field(default_factory=dict)
    # Per blocking rule, its keys too large to pair (linking.cap_blocks): rule, keys, records,
    # pairs not compared by that rule.
    skipped_blocks: list[dict[str, Any]] = field(default_factory=list)
    entities_total: int = 0
    records_total: int = 0
    size_distribution: dict[str, int] = field(default_factory=dict)
    largest_clusters: list[dict[str, Any]] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Timer:
    def __init__(self, result: ResolveResult) -> None:
        self.result, self.t = result, time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.result.timings[name] = round(now - self.t, 3)
        self.t = now


def read_records(engine: Engine, where: str = "") -> pa.Table:
    sql = RECORDS_SELECT.format(db=engine.database) + (f" WHERE {where}" if where else "")
    return engine.query_arrow(sql)


def frequent_values(engine: Engine, max_frequency: int, batch: pa.Table | None = None,
                    run_id: str = "") -> pa.Table:
    """(field, value) of identifying values shared by too many records: placeholders.

    `batch`: only the values these records carry matter (staged under `run_id`).
    """
    db = engine.database
    table = f"{db}.records"  # counts; FINAL would only shave exact copies
    among = None
    if batch is not None:
        among = {}
        for field in FREQUENT_KEYS:
            stage = f"{run_id}:v:{field}"
            values = pc.unique(batch[field].combine_chunks().drop_null())
            engine.insert_arrow(f"{db}.entity_stage", pa.table({
                "run_id": pa.array([stage] * len(values), pa.string()),
                "record_id": values.cast(pa.string())}))
            among[field] = (f"SELECT record_id AS v FROM {db}.entity_stage"
                            f" WHERE run_id = '{stage}'")
    return engine.query_arrow(frequent_values_sql(table, max_frequency, among))


INSERT_BATCH = 250_000


def _insert(engine: Engine, table: str, data: pa.Table) -> int:
    """Insert in bounded batches: one huge Arrow insert doubles peak memory on chDB."""
    written = 0
    for start in range(0, data.num_rows, INSERT_BATCH):
        written += engine.insert_arrow(table, data.slice(start, INSERT_BATCH))
    return written


def _now() -> datetime:
    return datetime.now(UTC)


def _assign_full(con: duckdb.DuckDBPyConnection, clusters: pa.Table, edges: pa.Table,
                 threshold: float) -> pa.Table:
    """record_id, entity_id (smallest member id: backend-independent), size, best edge p."""
    con.register("__clusters", clusters)
    con.register("__edges", edges)
    try:
        return con.sql(f"""
            WITH e AS (
                SELECT unique_id_l AS id, match_probability AS p FROM __edges
                WHERE match_probability >= {threshold}
                UNION ALL
                SELECT unique_id_r, match_probability FROM __edges
                WHERE match_probability >= {threshold}
            ), best AS (SELECT id, max(p) AS p FROM e GROUP BY id)
            SELECT c.unique_id AS record_id,
                   min(c.unique_id) OVER (PARTITION BY c.cluster_id) AS entity_id,
                   CAST(count(*) OVER (PARTITION BY c.cluster_id) AS UINTEGER) AS cluster_size,
                   coalesce(best.p, 1.0) AS match_probability
            FROM __clusters c LEFT JOIN best ON best.id = c.unique_id
        """).to_arrow_table()
    finally:
        con.unregister("__clusters")
        con.unregister("__edges")


def link_features(features: pa.Table, model: EntityModel, db_api: Any,
                  con: duckdb.DuckDBPyConnection | None = None,
                  cap: linking.BlockCap | None = None) -> tuple[pa.Table, pa.Table]:
    """Backend-neutral core: scored pairs and assignments for a feature table.

    `cap`: blocking rules on the capped key columns `features` carries (linking.cap_blocks).

    Splink blocks, scores and clusters on row numbers instead of the record ids (36-character
    strings): its joins and the `l.unique_id < r.unique_id` pair filter run on integers
    (a third less CPU for blocking 1M records); ids are mapped back on the way out.
    """
    con = con or duck.connect()
    ids = features["unique_id"].combine_chunks()
    numbered = features.set_column(0, "unique_id", pa.array(np.arange(len(ids), dtype=np.int64)))
    linker = linking.make_linker(numbered, model, db_api, cap)
    pairs = linking.predict(linker, model).as_pyarrow_table()
    clusters = linking.cluster(numbered.select(["unique_id"]), pairs.select(EDGE_COLUMNS),
                               model.threshold, db_api)
    pairs = _record_ids(pairs, ids, ("unique_id_l", "unique_id_r"))
    clusters = _record_ids(clusters, ids, ("unique_id", "cluster_id"))
    return pairs, _assign_full(con, clusters, pairs.select(EDGE_COLUMNS), model.threshold)


def _record_ids(table: pa.Table, ids: pa.Array, columns: tuple[str, ...]) -> pa.Table:
    """Row-number columns of `table` replaced by the record ids they number."""
    for name in columns:
        rows = table[name].cast(pa.int64())
        table = table.set_column(table.schema.get_field_index(name), name, pc.take(ids, rows))
    return table


def _with_cols(table: pa.Table, **cols: Any) -> pa.Table:
    for name, value in cols.items():
        arr = value if isinstance(value, pa.Array | pa.ChunkedArray) else pa.array(
            [value] * table.num_rows, type=_TYPES[name])
        table = table.append_column(name, arr)
    return table


_TYPES = {"model_version": pa.string(), "run_id": pa.string(),
          "resolved_at": pa.timestamp("ms", "UTC")}


def _finish(engine: Engine, res: ResolveResult, model: EntityModel, pairs: pa.Table,
            t_start: float) -> ResolveResult:
    db = engine.database
    counts = engine.query_arrow(
        f"SELECT cluster_size, count() AS n FROM {db}.golden_records FINAL WHERE is_deleted = 0"
        " GROUP BY cluster_size")
    size, n = (counts[c].to_numpy().astype(np.int64) for c in ("cluster_size", "n"))
    res.entities_total = int(n.sum())
    res.records_total = int((size * n).sum())
    res.size_distribution = size_distribution(pa.array(np.repeat(size, n), pa.int64()))
    top = engine.query_rows(
        f"SELECT entity_id, cluster_size FROM {db}.golden_records FINAL WHERE is_deleted = 0"
        " ORDER BY cluster_size DESC, entity_id LIMIT 5")
    res.largest_clusters = [{"entity_id": e, "size": int(s)} for e, s in top]
    res.examples = explain_pairs(pairs, model, limit=5)
    res.seconds = round(time.perf_counter() - t_start, 3)
    summary = {k: getattr(res, k) for k in ("size_distribution", "largest_clusters",
                                            "timings", "candidates", "links", "skipped",
                                            "skipped_blocks", "entities_merged_away",
                                            "entities_split")}
    engine.insert_arrow(f"{db}.entity_runs", pa.table({
        "run_id": [res.run_id], "mode": [res.mode], "model_version": [res.model_version],
        "records_in": pa.array([res.records_in], pa.uint64()),
        "pairs_scored": pa.array([res.pairs_scored], pa.uint64()),
        "entities_changed": pa.array([res.entities_changed], pa.uint64()),
        "seconds": [res.seconds], "summary": [json.dumps(summary, default=str)],
        "resolved_at": pa.array([_now()], pa.timestamp("ms", "UTC")),
    }))
    return res


def resolve_full(engine: Engine, model: EntityModel, *, db_api: Any | None = None,
                 memory_limit: str | None = None, run_id: str | None = None) -> ResolveResult:
    """Re-link every record with `model` and rewrite the entity tables."""
    t_start = time.perf_counter()
    db = engine.database
    res = ResolveResult(mode="full", run_id=run_id or uuid.uuid4().hex,
                        model_version=model.version)
    timer = _Timer(res)
    migrate_entities(engine)
    records = read_records(engine)
    frequent = frequent_values(engine, model.max_value_frequency)
    res.records_in = records.num_rows
    timer.lap("read")
    con = linking.duckdb_connection(memory_limit)
    feats = prepare(records.drop_columns(["status", "data_quality_score"]), frequent, con)
    del records  # golden records are computed inside ClickHouse
    timer.lap("prepare")
    db_api = db_api or linking.duckdb_api(con=con)
    link, lone, repeats = split_repeats(con, feats, model.max_cluster_size)
    if link.num_rows:
        (link,), cap = linking.cap_blocks(con, [link], blocking_columns(model))
        res.skipped_blocks = cap.skipped
        pairs, assign = link_features(link, model, db_api, con, cap)
        repeats = {**repeats, **cap.totals()}
    else:
        pairs, assign = pa.table({}), singletons(lone.slice(0, 0))
    del link
    res.pairs_scored = res.links = pairs.num_rows
    assign, capped = cap_clusters(con, assign, model.max_cluster_size)
    assign = pa.concat_tables([assign, singletons(lone).cast(assign.schema)])
    res.skipped = {**repeats, **capped}
    previous = engine.query_arrow(f"SELECT record_id, entity_id FROM {db}.entities FINAL")
    assign, events = stable_ids(con, assign, previous, retired_ids(engine))
    del previous
    timer.lap("link_cluster")
    now = _now()
    counts = write_events(engine, events, res.run_id, model.version, now)
    res.entities_merged_away, res.entities_split = counts.get("merge", 0), counts.get("split", 0)
    for table in ("entities", "golden_records", "entity_features", "entity_features_new"):
        engine.command(f"TRUNCATE TABLE IF EXISTS {db}.{table}")
    _insert(engine, f"{db}.entities",
                        _with_cols(assign, model_version=model.version, resolved_at=now))
    _insert(engine, f"{db}.entity_features", _with_cols(feats, run_id=res.run_id))
    del feats, assign, db_api
    con.close()  # release DuckDB's memory before ClickHouse builds the golden records
    timer.lap("write")
    write_golden(engine, now)
    res.entities_changed = engine.query_rows(
        f"SELECT count() FROM {db}.golden_records FINAL WHERE is_deleted = 0")[0][0]
    timer.lap("golden")
    return _finish(engine, res, model, pairs, t_start)


def candidate_sql(db: str, run_id: str, rules: list[tuple[str, ...]]) -> str:
    """Resolved records sharing any blocking key with this run's new records.

    One scan of entity_features; the key sets come from the run's rows in
    entity_features_new (primary-key range), not from ten more scans of the big table.
    Keys are matched as 64-bit hashes of the rule's columns: sets of integers instead of
    tuples of nullable strings, 2.5x less CPU. A hash collision only adds a candidate pair,
    which Splink then scores on the real values.
    """
    ef, new = f"{db}.entity_features", f"{db}.entity_features_new"
    conds = []
    for cols in rules:
        key = f"cityHash64({', '.join(cols)})"
        notnull = " AND ".join(f"{c} IS NOT NULL" for c in cols)
        conds.append(f"(({notnull}) AND {key} IN (SELECT {key} FROM {new}"
                     f" WHERE run_id = '{run_id}' AND {notnull}))")
    cols_sql = ", ".join(FEATURE_COLUMNS)
    # No FINAL: a record's features are written once (full runs truncate first).
    return (f"SELECT {cols_sql} FROM {ef} WHERE run_id != '{run_id}' AND ("
            + "\n OR ".join(conds) + ")")


def tf_sql(db: str, run_id: str, col: str) -> str:
    """Term frequencies over all resolved records, of the values this run's records carry.

    The model adjusts only exact-match levels by term frequency, and an exact match involves
    a new record, so the other values (most of them: every e-mail is rare) are not needed.
    """
    ef = f"{db}.entity_features"
    return (f"SELECT {col}, count() / (SELECT count() FROM {ef} WHERE {col} IS NOT NULL)"
            f" AS tf_{col} FROM {ef} WHERE {col} IN (SELECT {col} FROM {db}.entity_features_new"
            f" WHERE run_id = '{run_id}' AND {col} IS NOT NULL) GROUP BY {col}")


def tf_columns(model: EntityModel) -> list[str]:
    cols = {lvl["tf_adjustment_column"] for comp in model.splink.get("comparisons", [])
            for lvl in comp["comparison_levels"] if lvl.get("tf_adjustment_column")}
    return sorted(cols)


def unresolved_records(engine: Engine) -> pa.Table | None:
    """Records not in `entities` yet; None while nothing is resolved (a full run then)."""
    db = engine.database
    migrate_entities(engine)
    if not engine.query_rows(f"SELECT 1 FROM {db}.entities LIMIT 1"):
        return None
    # The id set from a scan without FINAL (one column), then FINAL over those rows only:
    # 2.5x less CPU than filtering the FINAL stream of every column of every record.
    # (A set of UUIDs: half the CPU of one of their 36-character texts.)
    return read_records(engine, f"id IN (SELECT id FROM {db}.records WHERE id NOT IN"
                                f" (SELECT toUUIDOrZero(record_id) FROM {db}.entities))")


def resolve_incremental(engine: Engine, model: EntityModel, *, db_api: Any | None = None,
                        memory_limit: str | None = None,
                        new: pa.Table | None = None,
                        run_id: str | None = None) -> ResolveResult:
    """Link records not yet resolved against the resolved ones (and each other).

    `new`: those records when the caller has read them already (`unresolved_records`).
    """
    t_start = time.perf_counter()
    db = engine.database
    new = new if new is not None else unresolved_records(engine)
    if new is None:
        return resolve_full(engine, model, db_api=db_api, memory_limit=memory_limit,
                            run_id=run_id)
    res = ResolveResult(mode="incremental", run_id=run_id or uuid.uuid4().hex,
                        model_version=model.version)
    timer = _Timer(res)
    res.records_in = new.num_rows
    if new.num_rows == 0:
        return _finish(engine, res, model, pa.table({}), t_start)
    frequent = frequent_values(engine, model.max_value_frequency, new, res.run_id)
    con = linking.duckdb_connection(memory_limit)
    feats = prepare(new.drop_columns(["status", "data_quality_score"]), frequent, con)
    staged = _with_cols(feats, run_id=res.run_id)
    _insert(engine, f"{db}.entity_features", staged)
    _insert(engine, f"{db}.entity_features_new", staged)
    del staged
    cands = engine.query_arrow(candidate_sql(db, res.run_id, blocking_columns(model)))
    res.candidates = cands.num_rows
    timer.lap("read_candidates")

    db_api = db_api or linking.duckdb_api(con=con)
    feats, lone, repeats = split_repeats(con, feats, model.max_cluster_size)
    if feats.num_rows == 0:  # nothing left to link: every new record repeats one identity
        assign = singletons(lone)
        return _write_incremental(engine, res, model, assign, no_events(), pa.table({}),
                                  {**repeats}, t_start, timer)
    (feats, cands), cap = linking.cap_blocks(con, [feats, cands], blocking_columns(model))
    res.skipped_blocks = cap.skipped
    repeats = {**repeats, **cap.totals()}
    new_sdf = db_api.register(feats)
    linker = linking.make_linker(new_sdf, model, db_api, cap)
    for col in tf_columns(model):
        tf = engine.query_arrow(tf_sql(db, res.run_id, col))
        linker.table_management.register_term_frequency_lookup(db_api.register(tf), col)
    parts = [linker.inference.predict_within(
        new_sdf, threshold_match_probability=model.predict_threshold, warning_mode="never")]
    if cands.num_rows:
        parts.append(linker.inference.predict_between(
            new_sdf, db_api.register(cands),
            threshold_match_probability=model.predict_threshold, warning_mode="never"))
    tables = [p.as_pyarrow_table() for p in parts]
    pairs = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
    res.pairs_scored = pairs.num_rows
    edges = pairs.select(EDGE_COLUMNS).filter(
        pc.greater_equal(pairs["match_probability"], model.threshold))
    res.links = edges.num_rows
    timer.lap("link")

    # Existing entities touched by a link: all their members join the component graph.
    touched = pc.unique(pa.concat_arrays([
        edges["unique_id_l"].combine_chunks(), edges["unique_id_r"].combine_chunks()]))
    new_ids = set(feats["unique_id"].to_pylist())
    touched_existing = [i for i in touched.to_pylist() if i not in new_ids]
    existing = pa.table({"record_id": pa.array([], pa.string()),
                         "entity_id": pa.array([], pa.string()),
                         "match_probability": pa.array([], pa.float64())})
    if touched_existing:
        engine.insert_arrow(f"{db}.entity_stage", pa.table({
            "run_id": [res.run_id] * len(touched_existing), "record_id": touched_existing}))
        existing = engine.query_arrow(
            f"SELECT record_id, entity_id, match_probability FROM {db}.entities FINAL"
            f" WHERE entity_id IN (SELECT entity_id FROM {db}.entities FINAL WHERE record_id IN"
            f" (SELECT record_id FROM {db}.entity_stage WHERE run_id = '{res.run_id}'))")
    assign, events, capped = _assign_incremental(
        con, feats.select(["unique_id"]), edges, existing, model.threshold, db_api,
        model.max_cluster_size)
    assign = pa.concat_tables([assign, singletons(lone).cast(assign.schema)])
    timer.lap("cluster")
    return _write_incremental(engine, res, model, assign, events, pairs,
                              {**repeats, **capped}, t_start, timer)


def _write_incremental(engine: Engine, res: ResolveResult, model: EntityModel,
                       assign: pa.Table, events: pa.Table, pairs: pa.Table,
                       skipped: dict[str, int], t_start: float, timer: _Timer) -> ResolveResult:
    db = engine.database
    res.skipped = skipped
    merged_away = sorted(set(events["entity_id"].to_pylist()))
    res.entities_merged_away = len(merged_away)
    now = _now()
    write_events(engine, events, res.run_id, model.version, now)
    _insert(engine, f"{db}.entities",
                        _with_cols(assign, model_version=model.version, resolved_at=now))
    # Golden rows for every affected entity, from its members' records only: `assign`
    # holds every member of each (the new records and all members of the entities they
    # joined), so records are read by id instead of joined in full.
    members = assign["record_id"].combine_chunks()
    engine.insert_arrow(f"{db}.entity_stage", pa.table({
        "run_id": pa.array([res.run_id + ":m"] * len(members), pa.string()),
        "record_id": members}))
    write_golden(engine, now, f"SELECT record_id FROM {db}.entity_stage"
                              f" WHERE run_id = '{res.run_id}:m'")
    res.entities_changed = len(pc.unique(assign["entity_id"].combine_chunks()))
    if merged_away:
        engine.insert_arrow(f"{db}.golden_records", _tombstones(merged_away, model.version, now))
    engine.command(f"ALTER TABLE {db}.entity_stage DELETE WHERE run_id LIKE '{res.run_id}%'")
    engine.command(f"ALTER TABLE {db}.entity_features_new DELETE WHERE run_id = '{res.run_id}'")
    timer.lap("write")
    return _finish(engine, res, model, pairs, t_start)


def split_repeats(con: duckdb.DuckDBPyConnection, feats: pa.Table,
                  max_size: int) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    """(records to link, records left alone, what was skipped).

    Records whose features are all identical (ids aside) more than `max_size` times — one
    person repeated thousands of times, thousands of name-only "John Smith" rows — would make
    every pair of them a candidate (n^2) and one giant cluster; they stay one entity each.
    """
    cols = [c for c in FEATURE_COLUMNS if c not in ("unique_id", "user_id")]
    con.register("__rep", feats)
    try:
        # Grouped by one 64-bit hash of the features instead of eight strings: half the
        # CPU; a collision of two different identities, both repeated, is ~1e-8 at 1M records.
        # Usually nothing repeats: one GROUP BY says so without a per-record flag table.
        if not con.sql(f"""
                SELECT count(*) FROM __rep GROUP BY hash({", ".join(cols)})
                HAVING count(*) > {int(max_size)} LIMIT 1""").fetchall():
            return feats, feats.select(["unique_id"]).slice(0, 0), {}
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE __rep_flag AS
            SELECT unique_id,
                   count(*) OVER (PARTITION BY hash({", ".join(cols)})) > {int(max_size)} AS lone
            FROM __rep""")
        n = con.sql("SELECT count(*) FROM __rep_flag WHERE lone").fetchall()[0][0]
        if not n:
            return feats, feats.select(["unique_id"]).slice(0, 0), {}
        groups = con.sql(f"""
            SELECT count(*) FROM (SELECT DISTINCT {", ".join(cols)} FROM __rep
            WHERE unique_id IN (SELECT unique_id FROM __rep_flag WHERE lone))""").fetchall()[0][0]
        link = con.sql("SELECT r.* FROM __rep r JOIN __rep_flag f USING (unique_id)"
                       " WHERE NOT f.lone").to_arrow_table()
        lone = con.sql("SELECT unique_id FROM __rep_flag WHERE lone").to_arrow_table()
        return link, lone, {"repeated_identity_groups": int(groups),
                            "repeated_identity_records": int(n)}
    finally:
        con.unregister("__rep")
        con.execute("DROP TABLE IF EXISTS __rep_flag")


def singletons(ids: pa.Table) -> pa.Table:
    """One-record entities (entity id = record id) in the assignment's shape."""
    n = ids.num_rows
    return pa.table({"record_id": ids["unique_id"], "entity_id": ids["unique_id"],
                     "cluster_size": pa.array([1] * n, pa.uint32()),
                     "match_probability": pa.array([1.0] * n, pa.float64())})


def cap_clusters(con: duckdb.DuckDBPyConnection, assign: pa.Table,
                 max_size: int) -> tuple[pa.Table, dict[str, int]]:
    """Components above `max_size` are not merged: their records stay one entity each.

    One real person is not 50 records; a component that big is a placeholder, a shared
    family address or a file repeating one person that slipped past the frequency guard.
    """
    con.register("__cap", assign)
    try:
        n, records = con.sql(f"""
            SELECT count(DISTINCT entity_id), count(*) FROM __cap
            WHERE cluster_size > {int(max_size)}""").fetchall()[0]
        if not n:
            return assign, {}
        capped = con.sql(f"""
            SELECT record_id,
                   CASE WHEN cluster_size > {int(max_size)} THEN record_id ELSE entity_id END
                       AS entity_id,
                   CAST(CASE WHEN cluster_size > {int(max_size)} THEN 1 ELSE cluster_size END
                        AS UINTEGER) AS cluster_size,
                   CASE WHEN cluster_size > {int(max_size)} THEN 1.0 ELSE match_probability END
                       AS match_probability
            FROM __cap""").to_arrow_table()
        return capped, {"oversize_components": int(n), "records_unlinked": int(records)}
    finally:
        con.unregister("__cap")


def _assign_incremental(con: duckdb.DuckDBPyConnection, new_nodes: pa.Table, edges: pa.Table,
                        existing: pa.Table, threshold: float, db_api: Any,
                        max_size: int) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    """Components over new edges + existing memberships (member -> 'E:'+entity node).

    Returns the rows to write, the merges (absorbed id -> survivor: the smallest existing
    id) and what was skipped: in a component above `max_size` nothing merges, existing
    records keep their entities and the new ones stay alone.
    """
    con.register("__new", new_nodes)
    con.register("__edges", edges)
    con.register("__existing", existing)
    try:
        nodes = con.sql("""
            SELECT unique_id FROM __new UNION SELECT record_id FROM __existing
            UNION SELECT 'E:' || entity_id FROM __existing""").to_arrow_table()
        all_edges = con.sql("""
            SELECT unique_id_l, unique_id_r, match_probability FROM __edges
            UNION ALL
            SELECT record_id, 'E:' || entity_id, 1.0 FROM __existing""").to_arrow_table()
        clusters = linking.cluster(nodes, all_edges, threshold, db_api)
        con.register("__clusters", clusters)
        assign = con.sql(f"""
            WITH c AS (
                SELECT unique_id, cluster_id, starts_with(unique_id, 'E:') AS is_entity
                FROM __clusters
            ), eid AS (
                SELECT cluster_id,
                       coalesce(min(substr(unique_id, 3)) FILTER (WHERE is_entity),
                                min(unique_id)) AS entity_id,
                       count(*) FILTER (WHERE NOT is_entity) AS cluster_size
                FROM c GROUP BY cluster_id
            ), e AS (
                SELECT unique_id_l AS id, match_probability AS p FROM __edges
                WHERE match_probability >= {threshold}
                UNION ALL SELECT unique_id_r, match_probability FROM __edges
                WHERE match_probability >= {threshold}
                UNION ALL SELECT record_id, match_probability FROM __existing
            ), best AS (SELECT id, max(p) AS p FROM e GROUP BY id)
            SELECT c.unique_id AS record_id, eid.entity_id,
                   CAST(eid.cluster_size AS UINTEGER) AS cluster_size,
                   CASE WHEN eid.cluster_size = 1 THEN 1.0 ELSE coalesce(best.p, 1.0) END
                       AS match_probability
            FROM c JOIN eid USING (cluster_id) LEFT JOIN best ON best.id = c.unique_id
            WHERE NOT c.is_entity
        """).to_arrow_table()
        con.register("__assign", assign)
        n_big, n_records = con.sql(f"""
            SELECT count(DISTINCT entity_id), count(*) FILTER (WHERE NOT is_existing) FROM (
                SELECT a.entity_id, a.cluster_size, x.record_id IS NOT NULL AS is_existing
                FROM __assign a LEFT JOIN __existing x USING (record_id))
            WHERE cluster_size > {int(max_size)}""").fetchall()[0]
        skipped: dict[str, int] = {}
        if n_big:
            skipped = {"oversize_components": int(n_big), "records_unlinked": int(n_records)}
            assign = con.sql(f"""
                SELECT a.record_id,
                       CASE WHEN a.cluster_size > {int(max_size)} THEN a.record_id
                            ELSE a.entity_id END AS entity_id,
                       CAST(CASE WHEN a.cluster_size > {int(max_size)} THEN 1
                                 ELSE a.cluster_size END AS UINTEGER) AS cluster_size,
                       CASE WHEN a.cluster_size > {int(max_size)} THEN 1.0
                            ELSE a.match_probability END AS match_probability
                FROM __assign a LEFT JOIN __existing x USING (record_id)
                WHERE NOT (a.cluster_size > {int(max_size)} AND x.record_id IS NOT NULL)
            """).to_arrow_table()
            con.unregister("__assign")
            con.register("__assign", assign)
        events = con.sql("""
            SELECT DISTINCT x.entity_id AS entity_id, a.entity_id AS other_id,
                   'merge' AS event
            FROM __existing x JOIN __assign a USING (record_id)
            WHERE x.entity_id != a.entity_id ORDER BY 1""").to_arrow_table()
        return assign, events if events.num_rows else no_events(), skipped
    finally:
        for name in ("__new", "__edges", "__existing", "__clusters", "__assign"):
            with contextlib.suppress(Exception):  # not registered if clustering failed
                con.unregister(name)


def _tombstones(entity_ids: list[str], version: str, now: datetime) -> pa.Table:
    n = len(entity_ids)
    empty = [""] * n
    return pa.table({
        "entity_id": entity_ids, "id": empty, "user_id": empty, "email": empty, "name": empty,
        "phone": empty, "address": empty, "city": empty, "country": empty,
        "created_date": pa.array([None] * n, pa.date32()), "status": empty,
        "source_file": empty, "ingested_at": pa.array([now] * n, pa.timestamp("ms", "UTC")),
        "data_quality_score": pa.array([0.0] * n, pa.float32()),
        "record_hash": empty, "metadata": ["{}"] * n,
        "validation_errors": pa.array([[]] * n, pa.list_(pa.string())),
        "cluster_size": pa.array([0] * n, pa.uint32()),
        "record_ids": pa.array([[]] * n, pa.list_(pa.string())),
        "sources": ["{}"] * n, "agreement": ["{}"] * n,
        "match_probability": pa.array([0.0] * n, pa.float64()), "model_version": [version] * n,
        "is_deleted": pa.array([1] * n, pa.uint8()),
        "resolved_at": pa.array([now] * n, pa.timestamp("ms", "UTC")),
    })


def resolve(engine: Engine, model: EntityModel, mode: str = "incremental",
            **kwargs: Any) -> ResolveResult:
    if mode == "full":
        return resolve_full(engine, model, **kwargs)
    if mode == "incremental":
        return resolve_incremental(engine, model, **kwargs)
    raise ValueError(f"unknown mode {mode!r}")
