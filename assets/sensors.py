"""The landing sensor: every new or changed file in the landing directory becomes a
dynamic partition, and a run of that file's format asset + normalize + dedup is requested
(small files of one format share one run over their partitions: creditlake/ingest/batches.py)."""


import json
import time

import dagster as dg

from assets.batch import range_tags
from assets.dedup import RECORDS_KEY
from assets.landing import landing_key
from assets.normalize import NORMALIZE_KEY
from assets.partitions import landing_files
from creditlake.ingest import batches
from creditlake.ingest.pipeline import expand_paths
from resources import CreditlakeHome

IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial", ".swp")
SETTLE_SECONDS = 2.0  # a file still being written is picked up on a later tick


def ingest_selection(fmt: str) -> list[dg.AssetKey]:
    return [landing_key(fmt), NORMALIZE_KEY, RECORDS_KEY]


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


def batch_run_request(batch: list[batches.Item]) -> dg.RunRequest:
    """One run for one file, or for a range of small files of one format."""
    tags = {"creditlake/format": batch[0].format}
    if len(batch) == 1:
        return dg.RunRequest(run_key=batch[0].key, partition_key=batch[0].key,
                             asset_selection=ingest_selection(batch[0].format), tags=tags)
    tags |= range_tags(batch[0].key, batch[-1].key)
    return dg.RunRequest(run_key=f"{batch[0].key}..{batch[-1].key}",
                         asset_selection=ingest_selection(batch[0].format), tags=tags)


def build_landing_sensor(job) -> dg.SensorDefinition:
    @dg.sensor(name="landing_sensor", job=job, minimum_interval_seconds=10,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Watches $CREDITLAKE_HOME/landing; each new or changed file becomes "
                           "a partition of `landing_files` and gets an ingest run.")
    def landing_sensor(context: dg.SensorEvaluationContext,
                       home: CreditlakeHome) -> dg.SensorResult:
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
            dynamic_partitions_requests=[landing_files.build_add_request([i.key for i in new])]
            if new else [],
            cursor=json.dumps(cursor))

    return landing_sensor
