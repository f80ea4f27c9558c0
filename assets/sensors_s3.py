"""S3 landing sensor: every new or changed object under an S3 prefix becomes a partition of
`landing_files` (and of its format's set) and gets the same land run as a file dropped in the
landing directory (`landed_sensor` then requests its ingest run).

Wire it in definitions.py, e.g.
    sensors=[..., build_s3_sensor(land_jobs, bucket="acme-landing", prefix="contacts/")]
    resources={..., "s3": S3Resource(endpoint_url=..., region_name=...)}  # key "s3"

Each tick lists the prefix (paginated), downloads fresh objects to
$CREDITLAKE_HOME/staging/s3/<bucket>/<etag>/<key> (streamed), registers them in the partition
registry (key "<object key>@<sha256 prefix>", same scheme as local files) and requests runs.
A tick handles at most `max_objects` / `max_bytes`; the rest stay out of the cursor and are
picked up on the next tick, so one evaluation stays short.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import dagster as dg
from dagster_aws.s3 import S3Resource

from assets.partitions import add_requests, landing_files
from assets.sensors import batch_run_request
from creditlake.ingest.batches import Item
from creditlake.landing import s3 as s3_landing
from resources import CreditlakeHome

STAGING_SUBDIR = Path("staging") / "s3"


def poll_s3(client, home: CreditlakeHome, bucket: str, prefix: str, cursor: dict[str, str],
            *, max_objects: int = 20, max_bytes: int = 2 << 30, page_size: int = 1000
            ) -> tuple[list[tuple[str, str, s3_landing.S3Object]], dict[str, str]]:
    """Download + register fresh objects within the tick budget.

    Returns ([(partition key, format, object)], new cursor)."""
    fresh, new_cursor = s3_landing.scan(client, bucket, prefix, cursor, page_size)
    staging = home.home / STAGING_SUBDIR
    registry = home.registry()
    found: list[tuple[str, str, s3_landing.S3Object]] = []
    spent = 0
    for obj in fresh:
        if found and (len(found) >= max_objects or spent + obj.size > max_bytes):
            break  # next tick: the object is not in the cursor yet
        path = s3_landing.download(client, obj, staging)
        entry = registry.register(path, s3_landing.version_root(staging, obj))
        found.append((entry.key, entry.format, obj))
        s3_landing.advance(new_cursor, obj)
        spent += obj.size
    return found, new_cursor


def build_s3_sensor(land_jobs: list, *, bucket: str,
                    prefix: str = "", name: str | None = None,
                    minimum_interval_seconds: int = 60, max_objects: int = 20,
                    max_bytes: int = 2 << 30) -> dg.SensorDefinition:
    sensor_name = name or re.sub(r"[^A-Za-z0-9_]+", "_", f"s3_landing_{bucket}_{prefix}").strip("_")

    @dg.sensor(name=sensor_name, jobs=land_jobs,
               minimum_interval_seconds=minimum_interval_seconds,
               description=f"Watches s3://{bucket}/{prefix}: each new or changed object becomes "
                           "a partition of `landing_files` and gets a land run.")
    def _sensor(context: dg.SensorEvaluationContext, s3: S3Resource,
                home: CreditlakeHome) -> dg.SensorResult:
        client = s3.get_client()
        cursor = json.loads(context.cursor) if context.cursor else {}
        found, cursor = poll_s3(client, home, bucket, prefix, cursor,
                                max_objects=max_objects, max_bytes=max_bytes)
        known = set(context.instance.get_dynamic_partitions(landing_files.name or ""))
        fresh = [(k, fmt, o) for k, fmt, o in found if k not in known]
        new = list(dict.fromkeys((k, fmt) for k, fmt, _ in fresh))
        if fresh:
            context.log.info(f"new S3 objects: {[o.uri for _, _, o in fresh]}")
        return dg.SensorResult(
            run_requests=[batch_run_request([Item(k, fmt, o.size)], {"creditlake/source": o.uri})
                          for k, fmt, o in fresh],
            dynamic_partitions_requests=add_requests(new),
            cursor=json.dumps(cursor))

    return _sensor
