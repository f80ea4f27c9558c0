"""entity/*: entity resolution downstream of dedup/records (Splink on DuckDB, ClickHouse tables).

One multi-asset writes `entities` (record -> entity) and `golden_records` in one step (the
golden rows are derived from the assignment in the same run). Runs are incremental by
default; the `entity_full_retrain` job re-trains the model from the data and re-links
everything. Wire into definitions.py with ENTITY_ASSETS, ENTITY_JOBS and ENTITY_SENSORS (the
check is in checks/).

Always on: `AFTER_LOAD` requests a run whenever a `dedup/records` partition was loaded since
the last entity run, but only once no load is still in progress, so a burst of files is
resolved by one incremental run. `ENTITY_SENSORS` evaluates it in the daemon (running by
default); `creditlake ingest` and the demo run the same job in-process after their files.
"""


import json
from typing import TYPE_CHECKING

import dagster as dg

from assets.dedup import RECORDS_KEY
from resources import ClickHouseResource, CreditlakeHome
from resources.run_recovery import tag_run_process

if TYPE_CHECKING:  # Splink (and sqlglot, DuckDB) load only when entity resolution runs
    from creditlake.entity.resolve import ResolveResult

ENTITIES_KEY = dg.AssetKey(["entity", "entities"])
GOLDEN_KEY = dg.AssetKey(["entity", "golden_records"])
GROUP = "entity"

# eager() without "no dependency partition missing": a blocked or failed file leaves its
# dedup/records partition missing for good, and must not stop resolution of all the others.
AFTER_LOAD = (dg.AutomationCondition.eager()
              .without(~dg.AutomationCondition.any_deps_missing())
              .with_label("after_load"))


class EntityRunConfig(dg.Config):
    """mode: incremental (link only unresolved records) | full (re-link all).
    retrain: estimate a new model version from the data first (implies full)."""

    mode: str = "incremental"
    retrain: bool = False
    memory_limit: str = "2GB"  # DuckDB's share; it spills to disk beyond


def metadata_json(value: object) -> dg.JsonMetadataValue:
    return dg.MetadataValue.json(json.loads(json.dumps(value, default=str)))


def run_metadata(res: "ResolveResult", weights: dict) -> dict[str, object]:
    return {
        "mode": res.mode,
        "model_version": res.model_version,
        "records_in": dg.MetadataValue.int(res.records_in),
        "candidates": dg.MetadataValue.int(res.candidates),
        "links": dg.MetadataValue.int(res.links),
        "entities_changed": dg.MetadataValue.int(res.entities_changed),
        "entities_merged_away": dg.MetadataValue.int(res.entities_merged_away),
        "entities_split": dg.MetadataValue.int(res.entities_split),
        "skipped": metadata_json(res.skipped),
        "skipped_blocks": metadata_json(res.skipped_blocks),
        "entities_total": dg.MetadataValue.int(res.entities_total),
        "records_total": dg.MetadataValue.int(res.records_total),
        "cluster_size_distribution": metadata_json(res.size_distribution),
        "largest_clusters": metadata_json(res.largest_clusters),
        "match_weights": metadata_json(weights),
        "example_matches": metadata_json(res.examples),
        "timings_seconds": metadata_json(res.timings),
        "seconds": dg.MetadataValue.float(res.seconds),
        "dagster/row_count": dg.MetadataValue.int(res.records_total),
    }


@dg.multi_asset(
    name="entity_resolution",
    specs=[
        dg.AssetSpec(ENTITIES_KEY, deps=[RECORDS_KEY], group_name=GROUP, kinds={"clickhouse"},
                     automation_condition=AFTER_LOAD,
                     description="record id -> entity_id, cluster size, match probability "
                                 "and model version (ClickHouse `entities`)."),
        dg.AssetSpec(GOLDEN_KEY, deps=[ENTITIES_KEY], group_name=GROUP, kinds={"clickhouse"},
                     automation_condition=AFTER_LOAD,
                     description="One survivorship record per entity, with the source record "
                                 "of every value (ClickHouse `golden_records`)."),
    ],
    pool="clickhouse_load",
)
def entity_resolution(context: dg.AssetExecutionContext, config: EntityRunConfig,
                      clickhouse: ClickHouseResource, home: CreditlakeHome):
    from creditlake.entity.run import run_entities

    tag_run_process(context.instance, context.run.run_id)  # a killed run can be told and reaped
    with clickhouse.open() as engine:
        run = run_entities(engine, home.home, mode=config.mode, retrain=config.retrain,
                           memory_limit=config.memory_limit)
    res, est = run.result, run.estimation
    if run.recovered_from:
        context.log.warning(f"entity run {run.recovered_from} died part-way (killed?): its "
                            "writes were repaired by re-linking everything (mode full)")
    if est.status == "rejected":
        context.log.warning(f"re-estimated model rejected, kept {est.model_version}: "
                            f"{'; '.join(est.problems)}")
    elif est.status == "estimated":
        context.log.info(f"model re-estimated ({est.reason}): {est.model_version} -> {est.path}")
    context.log.info(f"entity resolution ({res.mode}): {res.records_in} records in, "
                     f"{res.entities_changed} entities written in {res.seconds}s"
                     + (f"; skipped {res.skipped}" if res.skipped else ""))
    for s in res.skipped_blocks:
        context.log.warning(f"blocking rule {s['rule']}: {s['keys']} keys shared by too many "
                            f"records ({s['records']} records) not used for pairs by this rule")
    meta = {**run_metadata(res, run.model.match_weights()),
            "model_estimation": metadata_json(est.as_dict())}
    if run.recovered_from:
        meta["recovered_from_run"] = run.recovered_from
    yield dg.MaterializeResult(asset_key=ENTITIES_KEY, metadata=meta)
    yield dg.MaterializeResult(asset_key=GOLDEN_KEY, metadata={
        "entities_total": dg.MetadataValue.int(res.entities_total),
        "entities_changed": dg.MetadataValue.int(res.entities_changed),
        "model_version": res.model_version,
        "dagster/row_count": dg.MetadataValue.int(res.entities_total),
    })


ENTITY_ASSETS = [entity_resolution]
_SELECTION = dg.AssetSelection.assets(ENTITIES_KEY, GOLDEN_KEY)
ENTITY_RESOLVE_JOB = "entity_resolve"
ENTITY_SENSORS = [
    dg.AutomationConditionSensorDefinition(
        "entity_after_load", target=_SELECTION, default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=15, run_tags={"creditlake/trigger": "after_load"},
        description="Runs incremental entity resolution after loads into dedup/records "
                    "(one run for a burst of files, once no load is in progress)."),
]
ENTITY_JOBS = [
    dg.define_asset_job(
        ENTITY_RESOLVE_JOB, selection=_SELECTION,
        description="Link records not yet resolved against the resolved entities."),
    dg.define_asset_job(
        "entity_full_retrain", selection=_SELECTION,
        description="Explicit: re-train the Splink model from the data (new model version), "
                    "then re-link every record.",
        config={"ops": {"entity_resolution": {"config": {"mode": "full", "retrain": True}}}}),
]
