"""The one Dagster Definitions object. Wiring only: resources come from CREDITLAKE_* settings
(see README); nothing here opens ClickHouse (the webserver and daemon import this module)."""

from __future__ import annotations

from urllib.parse import urlparse

import dagster as dg

from assets.deadletter import DEADLETTER_JOBS
from assets.dedup import dedup_records
from assets.entities import ENTITY_ASSETS, ENTITY_JOBS, ENTITY_SENSORS
from assets.landing import build_land_jobs, build_landing_assets
from assets.normalize import normalize_contacts
from assets.sensors import build_landed_sensor, build_landing_sensor
from checks.entities import ENTITY_CHECKS
from checks.quality import QUALITY_CHECKS
from creditlake.config import Settings, load_settings
from creditlake.lazy import arrow_without_pandas
from resources import ClickHouseResource, CreditlakeHome, LogProgress

arrow_without_pandas()  # runs the daemon launches start here: no pandas import for pyarrow

INGEST_GROUPS = ("normalize", "dedup")  # the landing group runs in the land_<format> jobs


def _s3_landing(land_jobs: list, settings: Settings) -> tuple[list, dict]:
    """Optional S3 landing: CREDITLAKE_S3_LANDING=s3://bucket/prefix (+ AWS_* credentials,
    CREDITLAKE_S3_ENDPOINT_URL for S3-compatible stores)."""
    url = settings.s3_landing
    if not url:
        return [], {}
    from dagster_aws.s3 import S3Resource

    from assets.sensors_s3 import build_s3_sensor

    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"CREDITLAKE_S3_LANDING must look like s3://bucket/prefix, got {url!r}")
    # region: boto3 reads AWS_REGION / AWS_DEFAULT_REGION itself
    resource = S3Resource(endpoint_url=settings.s3_endpoint_url)
    sensor = build_s3_sensor(land_jobs, bucket=parsed.netloc, prefix=parsed.path.lstrip("/"))
    return [sensor], {"s3": resource}


def make_definitions(settings: Settings, progress: object | None = None,
                     max_failure_rate: float | None = None,
                     block_on_rejects: bool | None = None) -> dg.Definitions:
    ingest_job = dg.define_asset_job(
        "ingest", selection=dg.AssetSelection.groups(*INGEST_GROUPS),
        description="Normalize, validate, dedup and load landed files (after their land run).",
        executor_def=dg.in_process_executor)
    land_jobs = build_land_jobs()
    s3_sensors, s3_resources = _s3_landing(land_jobs, settings)
    return dg.Definitions(
        assets=[*build_landing_assets(), normalize_contacts, dedup_records, *ENTITY_ASSETS],
        asset_checks=[*QUALITY_CHECKS, *ENTITY_CHECKS],
        jobs=[*land_jobs, ingest_job, *ENTITY_JOBS, *DEADLETTER_JOBS],
        sensors=[build_landing_sensor(land_jobs), build_landed_sensor(land_jobs, ingest_job),
                 *s3_sensors, *ENTITY_SENSORS],
        resources={
            "clickhouse": ClickHouseResource.from_settings(settings),
            "home": CreditlakeHome.from_settings(settings, max_failure_rate, block_on_rejects),
            "progress": progress if progress is not None else LogProgress(),
            **s3_resources,
        },
        executor=dg.in_process_executor,
    )


defs = make_definitions(load_settings())
