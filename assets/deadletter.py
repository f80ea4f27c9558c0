"""Dead-letter jobs: `replay_rejects` and `release_held`, the Dagster face of `creditlake replay`
and `creditlake release` (same plain functions, creditlake/ingest/replay.py and release.py).

Both change a file's rows in `records`, so they report on dedup/records for that file's
partition: release as a materialization (the file is now loaded), replay as a materialization
per file whose replay loaded rows (an observation where every row still failed), each with
its own metadata; a materialization is what the entity automation reacts to. The
CLI commands record the same events in the instance (runless), so the UI agrees either way.
"""

from datetime import UTC, datetime

import dagster as dg

from assets import metadata as md
from assets.dedup import RECORDS_KEY
from creditlake.ingest.manifest import Manifest
from creditlake.ingest.release import release
from creditlake.ingest.replay import ReplayResult, replay
from resources import ClickHouseResource, CreditlakeHome


class ReplayConfig(dg.Config):
    partition_key: str = ""  # one file (partition key); empty: every file with rejects
    since: str = ""          # only rows rejected at/after this ISO date or time (UTC)


class ReleaseConfig(dg.Config):
    partition_key: str  # the blocked file's partition key


def replay_events(results: list[ReplayResult]
                  ) -> list[dg.AssetMaterialization | dg.AssetObservation]:
    """A file whose replay loaded rows has new data in `records`: a materialization (so the
    entity automation resolves them); one whose rows all still fail: an observation."""
    out: list[dg.AssetMaterialization | dg.AssetObservation] = []
    for r in results:
        meta = {k: v for k, v in r.as_dict().items() if k != "partition_key"}
        event = dg.AssetMaterialization if r.loaded else dg.AssetObservation
        out.append(event(asset_key=RECORDS_KEY, partition=r.partition_key, metadata=meta))
    return out


def release_event(m: Manifest) -> dg.AssetMaterialization:
    return dg.AssetMaterialization(
        asset_key=RECORDS_KEY, partition=m.key,
        metadata={**md.counts(m), "loaded": dg.MetadataValue.int(m.loaded),
                  "duplicates": dg.MetadataValue.int(m.duplicates), "released": True})


@dg.op(description="Re-process dead-letter rows through the current mapping overrides and "
                   "rules; rows that now pass load (deduplicated), the rest keep new reasons.")
def replay_rejected_rows(context: dg.OpExecutionContext, config: ReplayConfig,
                   clickhouse: ClickHouseResource, home: CreditlakeHome) -> dict:
    since = datetime.fromisoformat(config.since) if config.since else None
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    with clickhouse.open() as engine:
        results = replay(engine, home.home, [config.partition_key] if config.partition_key
                         else None, since=since, overrides=home.overrides())
    for event in replay_events(results):
        context.log_event(event)
    totals = {k: sum(getattr(r, k) for r in results)
              for k in ("replayed", "loaded", "duplicates", "still_rejected")}
    context.add_output_metadata({"files": len(results), **totals})
    return totals


@dg.op(description="Load the held (valid, staged) rows of a blocked file.")
def release_held_rows(context: dg.OpExecutionContext, config: ReleaseConfig,
                      clickhouse: ClickHouseResource, home: CreditlakeHome) -> dict:
    with clickhouse.open() as engine:
        m = release(engine, home.home, config.partition_key)
    context.log_event(release_event(m))
    return {"loaded": m.loaded, "duplicates": m.duplicates, "rejected": m.rejected}


@dg.job(name="replay_rejects", description="creditlake replay: re-process dead-letter rows.")
def replay_job() -> None:
    replay_rejected_rows()


@dg.job(name="release_held", description="creditlake release: load a blocked file's held rows.")
def release_job() -> None:
    release_held_rows()


DEADLETTER_JOBS = [replay_job, release_job]
