"""The entity Dagster multi-asset and its check, executed in-process on real chDB."""

from __future__ import annotations

import dagster as dg
import pytest

from assets.entities import ENTITIES_KEY, ENTITY_ASSETS, ENTITY_JOBS, GOLDEN_KEY
from checks.entities import ENTITY_CHECKS
from creditlake.entity.synthetic import generate_people, to_records_table
from resources import ClickHouseResource, CreditlakeHome

pytestmark = pytest.mark.integration


def _resources(settings) -> dict:
    return {
        "clickhouse": ClickHouseResource(url=settings.clickhouse_url,
                                         database=settings.clickhouse_database,
                                         home=str(settings.home)),
        "home": CreditlakeHome(path=str(settings.home)),
    }


def test_materialize_entities_with_metadata_and_check(engine, settings) -> None:
    engine.insert_arrow(f"{engine.database}.records",
                        to_records_table(generate_people(800, seed=3)))
    result = dg.materialize([*ENTITY_ASSETS, *ENTITY_CHECKS], resources=_resources(settings))
    assert result.success
    mats = {m.asset_key: m for m in result.get_asset_materialization_events()}
    meta = mats[ENTITIES_KEY].materialization.metadata
    assert meta["records_in"].value == 800
    assert meta["entities_total"].value < 800  # duplicates were merged
    dist = meta["cluster_size_distribution"].value
    assert sum(dist.values()) == meta["entities_total"].value
    weights = meta["match_weights"].value
    assert weights["email"]["Exact match on email"] > 5
    examples = meta["example_matches"].value
    assert examples and {"raised_by", "lowered_by", "match_probability"} <= set(examples[0])
    assert str(meta["model_version"].value).startswith("people-v1+")
    assert GOLDEN_KEY in mats
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["entities_checked"].value == meta[
        "entities_total"].value

    # A second run is incremental and finds nothing new.
    again = dg.materialize(ENTITY_ASSETS, resources=_resources(settings))
    meta2 = {m.asset_key: m for m in again.get_asset_materialization_events()}[
        ENTITIES_KEY].materialization.metadata
    assert meta2["mode"].value == "incremental" and meta2["records_in"].value == 0


def test_entity_jobs_resolve_in_definitions(settings) -> None:
    defs = dg.Definitions(assets=ENTITY_ASSETS, asset_checks=ENTITY_CHECKS, jobs=ENTITY_JOBS,
                          resources=_resources(settings))
    names = {j.name for j in ENTITY_JOBS}
    assert names == {"entity_resolve", "entity_full_retrain"}
    for name in names:
        assert defs.resolve_job_def(name) is not None
