"""The one Dagster Definitions object. Wiring only: resources come from CREDITLAKE_* settings
(see README); nothing here opens ClickHouse (the webserver and daemon import this module)."""

from __future__ import annotations

import dagster as dg

from assets.dedup import dedup_records
from assets.landing import build_landing_assets
from assets.normalize import normalize_contacts
from assets.sensors import build_landing_sensor
from checks.quality import QUALITY_CHECKS
from creditlake.config import Settings, load_settings
from resources import ClickHouseResource, CreditlakeHome, LogProgress
from resources.home import max_failure_rate_from_env

INGEST_GROUPS = ("landing", "normalize", "dedup")


def make_definitions(settings: Settings, progress: object | None = None,
                     max_failure_rate: float | None = None) -> dg.Definitions:
    ingest_job = dg.define_asset_job(
        "ingest", selection=dg.AssetSelection.groups(*INGEST_GROUPS),
        description="Ingest one landed file: its format's landing asset, normalize, dedup+load.",
        executor_def=dg.in_process_executor)
    return dg.Definitions(
        assets=[*build_landing_assets(), normalize_contacts, dedup_records],
        asset_checks=QUALITY_CHECKS,
        jobs=[ingest_job],
        sensors=[build_landing_sensor(ingest_job)],
        resources={
            "clickhouse": ClickHouseResource(url=settings.clickhouse_url,
                                             database=settings.clickhouse_database,
                                             home=str(settings.home)),
            "home": CreditlakeHome(
                path=str(settings.home), landing_dir=str(settings.landing_dir),
                max_failure_rate=max_failure_rate if max_failure_rate is not None
                else max_failure_rate_from_env()),
            "progress": progress if progress is not None else LogProgress(),
        },
        executor=dg.in_process_executor,
    )


defs = make_definitions(load_settings())
