"""Splink runs on a prepared feature table: train, score pairs, cluster.

Backend-neutral: callers pass a Splink DatabaseAPI (DuckDBAPI for one machine, SparkAPI for
scale-out); inputs and outputs are Arrow tables so both backends are interchangeable.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
from splink import DuckDBAPI, Linker, block_on
from splink.clustering import cluster_pairwise_predictions_at_threshold

from creditlake.entity import duck
from creditlake.entity.model import EntityModel, settings_creator

log = logging.getLogger(__name__)
# Splink logs every SQL step at INFO; keep our logs readable.
SPLINK_LOG_LEVEL = logging.WARNING


def duckdb_connection(memory_limit: str | None = None,
                      threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """The run's connection: row order is never relied on (ids are carried in columns)."""
    con = duck.connect(memory_limit, threads)
    con.execute("SET preserve_insertion_order = false")
    return con


def duckdb_api(memory_limit: str | None = None, threads: int | None = None,
               con: duckdb.DuckDBPyConnection | None = None) -> DuckDBAPI:
    """Splink on DuckDB; pass `con` to share one connection (and memory limit)."""
    return DuckDBAPI(connection=con or duckdb_connection(memory_limit, threads))


def _to_arrow(df: Any) -> pa.Table:
    """SplinkDataFrame -> Arrow on either backend."""
    return df.as_pyarrow_table()


# Deterministic rules for the prior, and EM passes: each pass fixes the comparisons in its
# blocking rule, together they cover all. Only rules on columns the data fills are used: a
# pass over an empty column finds no pairs, and a failed pass must not touch the prior.
PRIOR_RULES = (("first_name", "surname", "dob"), ("email",), ("first_name", "surname", "phone"),
               ("first_name", "surname", "postcode"))
EM_RULES = (("first_name", "surname"), ("dob",), ("postcode",), ("email",), ("phone",))
MIN_FILLED = 0.05  # share of records with a value for a column to take part


def _filled(features: pa.Table) -> set[str]:
    n = max(features.num_rows, 1)
    return {c for c in features.column_names if 1 - features[c].null_count / n >= MIN_FILLED}


def train(features: pa.Table, name: str, *, db_api: Any | None = None,
          max_pairs: float = 2e6, em_max_pairs: float | None = None, seed: int = 42,
          **model_kwargs: Any) -> EntityModel:
    """Estimate the prior (deterministic rules), u (random sampling) and m (EM passes)."""
    t0 = time.perf_counter()
    db_api = db_api or duckdb_api()
    # ERROR: Splink warns for every level the sample never shows; the guard rails decide.
    linker = Linker(db_api.register(features), settings_creator(), log_level=logging.ERROR)
    tr = linker.training
    filled = _filled(features)
    usable = [r for r in PRIOR_RULES if set(r) <= filled] or [PRIOR_RULES[0]]
    tr.estimate_probability_two_random_records_match([block_on(*r) for r in usable],
                                                     recall=0.7)
    prior = linker.misc.save_model_to_json()["probability_two_random_records_match"]
    tr.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    for rule in (r for r in EM_RULES if set(r) <= filled):
        try:
            tr.estimate_parameters_using_expectation_maximisation(
                block_on(*rule), max_pairs=em_max_pairs)
        except Exception as exc:  # noqa: BLE001 - e.g. too few pairs to converge
            log.info("EM pass %s skipped: %s", rule, exc)
    splink_dict = _bounded(linker.misc.save_model_to_json())
    splink_dict["probability_two_random_records_match"] = prior
    log.info("trained %s in %.1fs", name, time.perf_counter() - t0)
    return EntityModel(name=name, splink=splink_dict, **model_kwargs)


# A level never seen among matches (or non-matches) in the training data gets m (or u) ~ 0 and
# a weight of -100 or more: one such level would veto any pair. Floors keep every weight
# within roughly +-17 bits, so no single comparison can overrule all the others.
M_FLOOR, U_FLOOR = 1e-4, 1e-5


def _bounded(splink_dict: dict[str, Any]) -> dict[str, Any]:
    for comp in splink_dict.get("comparisons", []):
        for lvl in comp["comparison_levels"]:
            if lvl.get("is_null_level"):
                continue
            if lvl.get("m_probability") is not None:
                lvl["m_probability"] = max(lvl["m_probability"], M_FLOOR)
            if lvl.get("u_probability") is not None:
                lvl["u_probability"] = max(lvl["u_probability"], U_FLOOR)
    return splink_dict


# A blocking key shared by more records than this identifies nobody ("smith" + "london" in a
# file drawn from a few hundred names and cities): its n(n-1)/2 pairs, nearly all non-matches,
# are not scored for that rule. Measured on a 1M-row CRM file with repeated names: surname+city
# blocks of ~1,600 records (780M pairs), first_name+surname of ~625 (312M); 1M generated
# people have no key above 259 records, so on them nothing is skipped.
MAX_BLOCK_RECORDS = 300


@dataclass
class BlockCap:
    """The blocking rules replaced for a run, and what each no longer compares."""

    rules: dict[int, str] = field(default_factory=dict)  # rule index -> SQL on its key column
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        if not self.skipped:
            return {}
        return {"blocking_keys_skipped": sum(s["keys"] for s in self.skipped),
                "blocking_pairs_skipped": sum(s["pairs"] for s in self.skipped)}


def _key_column(rule: int) -> str:
    return f"block_key_{rule}"


def cap_blocks(con: duckdb.DuckDBPyConnection, tables: list[pa.Table],
               rules: list[tuple[str, ...]],
               max_records: int = MAX_BLOCK_RECORDS) -> tuple[list[pa.Table], BlockCap]:
    """`tables` (linked together) with a key column for each rule that has oversized keys.

    Block sizes are counted over all `tables` (an incremental run's new records and all the
    resolved records sharing a key with them: the key's full count). A rule with a key above
    `max_records` blocks on `block_key_<i>` instead: a 63-bit hash of its columns, NULL for
    the oversized keys (a hash collision only adds a pair Splink scores on the real values).
    Rules without such keys are left as they are.
    """
    cap = BlockCap()
    names = [f"__cap_{j}" for j in range(len(tables))]
    for name, table in zip(names, tables, strict=True):
        con.register(name, table)
    cols_all = sorted({c for cols in rules for c in cols})
    union = " UNION ALL ".join(f"SELECT {', '.join(cols_all)} FROM {n}" for n in names)

    def oversized(cols: tuple[str, ...]) -> str:
        notnull = " AND ".join(f"{c} IS NOT NULL" for c in cols)
        return (f"SELECT {', '.join(cols)}, count(*) AS n FROM __cap_all WHERE {notnull}"
                f" GROUP BY ALL HAVING count(*) > {int(max_records)}")

    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW __cap_all AS {union}")
        counts = con.sql(" UNION ALL ".join(
            f"SELECT {i} AS rule, count(*) AS keys, coalesce(sum(n), 0) AS records,"
            f" coalesce(sum(n * (n - 1) // 2), 0) AS pairs FROM ({oversized(cols)})"
            for i, cols in enumerate(rules))).fetchall()
        for i, keys, records, pairs in sorted(counts):
            if not keys:
                continue
            cols = rules[i]
            cap.rules[i] = f"l.{_key_column(i)} = r.{_key_column(i)}"
            cap.skipped.append({"rule": "+".join(cols), "keys": int(keys),
                                "records": int(records), "pairs": int(pairs)})
            on = " AND ".join(f"t.{c} = b.{c}" for c in cols)
            notnull = " AND ".join(f"t.{c} IS NOT NULL" for c in cols)
            key = f"CAST(hash({', '.join(f't.{c}' for c in cols)}) >> 1 AS BIGINT)"
            for j, name in enumerate(names):
                tables[j] = con.sql(f"""
                    SELECT t.*, CASE WHEN {notnull} AND b.n IS NULL THEN {key} END
                        AS {_key_column(i)}
                    FROM {name} t LEFT JOIN ({oversized(cols)}) b ON {on}""").to_arrow_table()
                con.unregister(name)
                con.register(name, tables[j])
    finally:
        con.execute("DROP VIEW IF EXISTS __cap_all")
        for name in names:
            con.unregister(name)
    # info, not warning: the run reports these itself (asset warning, the ingest's entity line)
    for s in cap.skipped:
        log.info("blocking rule %s: %d keys shared by more than %d records each skipped "
                    "(%d records, %d pairs not compared by this rule; other rules still "
                    "pair them)", s["rule"], s["keys"], max_records, s["records"], s["pairs"])
    return tables, cap


def blocking_rules(model: EntityModel, dialect: str, cap: BlockCap | None = None) -> list[Any]:
    """The model's blocking rules for `dialect`, the capped ones on their key columns."""
    rules = list(model.splink_settings(dialect)["blocking_rules_to_generate_predictions"])
    for i, sql in (cap.rules if cap is not None else {}).items():
        rules[i] = {"blocking_rule": sql, "sql_dialect": dialect}
    return rules


def make_linker(features: pa.Table | Any, model: EntityModel, db_api: Any,
                cap: BlockCap | None = None) -> Linker:
    """A Linker on `features` (Arrow, or an already registered SplinkDataFrame).

    `cap`: blocking rules replaced by their capped key columns (cap_blocks) for this run.
    """
    sdf = features if hasattr(features, "physical_name") else db_api.register(features)
    dialect = db_api.sql_dialect.sql_dialect_str
    settings = model.splink_settings(dialect)
    if cap is not None and cap.rules:
        settings = {**settings,
                    "blocking_rules_to_generate_predictions": blocking_rules(model, dialect, cap)}
    return Linker(sdf, settings, log_level=SPLINK_LOG_LEVEL)


def predict(linker: Linker, model: EntityModel) -> Any:
    """Scored candidate pairs (SplinkDataFrame) above the model's predict threshold."""
    return linker.inference.predict(threshold_match_probability=model.predict_threshold,
                                    warning_mode="never")


def cluster(nodes: pa.Table, edges: pa.Table, threshold: float, db_api: Any) -> pa.Table:
    """Connected components over edges (unique_id_l, unique_id_r, match_probability)."""
    cc = cluster_pairwise_predictions_at_threshold(
        nodes, edges, db_api=db_api, node_id_column_name="unique_id",
        edge_id_column_name_left="unique_id_l", edge_id_column_name_right="unique_id_r",
        threshold_match_probability=threshold,
    )
    return _to_arrow(cc).select(["unique_id", "cluster_id"])
