"""The landing sensors. `landing_sensor`: every new or changed file in the landing directory
becomes a partition (of `landing_files` and of its format's set) and a `land_<format>` run is
requested (small files of one format share one run over their partitions: creditlake/ingest/
batches.py). `landed_sensor`: when a land run succeeds, the `ingest` run (normalize + dedup)
of the same files follows."""


import json
import time

import dagster as dg

from assets.batch import range_tags, run_partitions
from assets.landing import land_job_name
from assets.partitions import add_requests, landing_files
from creditlake.ingest import batches
from creditlake.ingest.pipeline import expand_paths
from resources import CreditlakeHome
from resources.run_recovery import PROCESS_TAG, reap_dead_runs

IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial", ".swp")
SETTLE_SECONDS = 2.0  # a file still being written is picked up on a later tick


def scan_landing(home: CreditlakeHome, cursor: dict[str, list], now: float | None = None
                 ) -> tuple[list[tuple[str, str]], dict[str, list]]:
    """New (partition key, format) pairs in the landing dir; cursor maps path ->
    [size, mtime_ns, key] so unchanged files are not hashed again."""
    now = time.time() if now is None else now
    landing = home.landing
    if not landing.exists():
        return [], cursor
    registry = home.registry()
    found: list[tuple[str, str]] = []
    new_cursor: dict[str, list] = {}
    for f in expand_paths([landing]):
        if f.name.endswith(IGNORED_SUFFIXES):
            continue
        st = f.stat()
        if now - st.st_mtime < SETTLE_SECONDS:
            continue
        prev = cursor.get(str(f))
        if prev and prev[0] == st.st_size and prev[1] == st.st_mtime_ns:
            new_cursor[str(f)] = prev
            continue
        entry = registry.register(f, landing)
        new_cursor[str(f)] = [st.st_size, st.st_mtime_ns, entry.key]
        found.append((entry.key, entry.format))
    return found, new_cursor


def batch_run_request(batch: list[batches.Item], tags: dict[str, str] | None = None
                      ) -> dg.RunRequest:
    """The land run for one file, or for a range of small files of one format."""
    tags = {"creditlake/format": batch[0].format, **(tags or {})}
    job = land_job_name(batch[0].format)
    if len(batch) == 1:
        return dg.RunRequest(run_key=batch[0].key, partition_key=batch[0].key,
                             job_name=job, tags=tags)
    return dg.RunRequest(run_key=f"{batch[0].key}..{batch[-1].key}", job_name=job,
                         tags=tags | range_tags(batch[0].key, batch[-1].key))


def build_landing_sensor(land_jobs: list) -> dg.SensorDefinition:
    @dg.sensor(name="landing_sensor", jobs=land_jobs, minimum_interval_seconds=10,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Watches $CREDITLAKE_HOME/landing; each new or changed file becomes "
                           "a partition of `landing_files` and of its format's set, and gets "
                           "a land run (`landed_sensor` then requests its ingest run).")
    def landing_sensor(context: dg.SensorEvaluationContext,
                       home: CreditlakeHome) -> dg.SensorResult:
        for run_id in reap_dead_runs(context.instance):  # killed runs give back their slot
            context.log.warning(f"run {run_id} lost its process (killed?): marked failed")
        cursor = json.loads(context.cursor) if context.cursor else {}
        found, cursor = scan_landing(home, cursor)
        known = set(context.instance.get_dynamic_partitions(landing_files.name or ""))
        fresh = [(k, fmt) for k, fmt in found if k not in known]
        if fresh:
            context.log.info(f"new landing files: {[k for k, _ in fresh]}")
        # new keys are appended in this order, so each batch below is a contiguous range
        new = batches.registration_order([batches.Item(k, fmt, home.registry().get(k).size)
                                          for k, fmt in fresh])
        order = [*context.instance.get_dynamic_partitions(landing_files.name or ""),
                 *(i.key for i in new)]
        return dg.SensorResult(
            run_requests=[batch_run_request(b) for b in batches.plan_batches(new, order)],
            dynamic_partitions_requests=add_requests((i.key, i.format) for i in new),
            cursor=json.dumps(cursor))

    return landing_sensor


def ingest_run_request(land_run: dg.DagsterRun) -> dg.RunRequest:
    """The ingest run (normalize + dedup) of the files a successful land run landed."""
    first, last = run_partitions(land_run.tags)
    tags = {k: v for k, v in land_run.tags.items()  # not its process: it is gone by now
            if k.startswith("creditlake/") and k != PROCESS_TAG}
    tags["creditlake/land_run"] = land_run.run_id
    if first == last:
        return dg.RunRequest(run_key=f"ingest:{land_run.run_id}", partition_key=first,
                             tags=tags)
    return dg.RunRequest(run_key=f"ingest:{land_run.run_id}",
                         tags=tags | range_tags(first, last))


def build_landed_sensor(land_jobs: list, ingest_job) -> dg.SensorDefinition:
    @dg.run_status_sensor(name="landed_sensor", run_status=dg.DagsterRunStatus.SUCCESS,
                          monitored_jobs=land_jobs, request_job=ingest_job,
                          minimum_interval_seconds=5,
                          default_status=dg.DefaultSensorStatus.RUNNING,
                          description="After a land run succeeds, requests the ingest run "
                                      "(normalize + dedup) of the same files.")
    def landed_sensor(context: dg.RunStatusSensorContext) -> dg.RunRequest:
        return ingest_run_request(context.dagster_run)

    return landed_sensor
