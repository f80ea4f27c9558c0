"""Splink runs on a prepared feature table: train, score pairs, cluster.

Backend-neutral: callers pass a Splink DatabaseAPI (DuckDBAPI for one machine, SparkAPI for
scale-out); inputs and outputs are Arrow tables so both backends are interchangeable.
"""

from __future__ import annotations

import logging
import time
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


def make_linker(features: pa.Table | Any, model: EntityModel, db_api: Any) -> Linker:
    """A Linker on `features` (Arrow, or an already registered SplinkDataFrame)."""
    sdf = features if hasattr(features, "physical_name") else db_api.register(features)
    settings = model.splink_settings(db_api.sql_dialect.sql_dialect_str)
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
