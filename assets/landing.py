"""landing/<format>: one partitioned asset per source format (reader + header mapping), each
on its own partition set (`<format>_files`) and landed by its own job, `land_<format>`."""

from typing import TYPE_CHECKING

import dagster as dg

from assets import metadata as md
from assets.batch import SINGLE_RUN, each_file, partition_keys
from assets.partitions import format_files
from creditlake import readers
from creditlake.ingest.accounting import write_log
from creditlake.ingest.land import land
from creditlake.ingest.manifest import UNRECOGNIZED, Status
from resources import ClickHouseResource, CreditlakeHome, ProgressReporter

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

FORMAT_DESCRIPTIONS = {
    "csv": "CSV/TSV and other delimited text (delimiter, quoting and encoding sniffed)",
    "json": "JSON documents: an array of objects, or an object holding one",
    "jsonl": "JSON Lines: one object per line",
    "parquet": "Apache Parquet",
    "xml": "Record-oriented XML (record element detected or configured)",
    "sql": "SQL dumps (mysqldump/mariadb-dump INSERTs, pg_dump COPY/INSERTs)",
    "excel": "Excel workbooks (.xlsx/.xls), every sheet",
    "archive": "ZIP archives: every member ingested with its own format",
    UNRECOGNIZED: "Files no reader recognizes: quarantined with the reason",
}


def landing_formats() -> list[str]:
    return [*readers.formats(), UNRECOGNIZED]


def landing_key(fmt: str) -> dg.AssetKey:
    return dg.AssetKey(["landing", fmt])


def build_landing_asset(fmt: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=landing_key(fmt),
        partitions_def=format_files(fmt),
        group_name="landing",
        kinds={"python", "arrow"},
        owners=["team:data"],
        tags={"format": fmt, "stage": "landing"},
        backfill_policy=SINGLE_RUN,
        description=f"{FORMAT_DESCRIPTIONS.get(fmt, fmt)}. Streams the file with the {fmt} "
                    "reader, maps its headers onto the master schema (unmapped columns go to "
                    "`metadata`) and stages the rows as Arrow; rows the parser refuses go to "
                    "`rejected_records`.",
    )
    def _landing(context: dg.AssetExecutionContext, clickhouse: ClickHouseResource,
                 home: CreditlakeHome,
                 progress: dg.ResourceParam[ProgressReporter]) -> dg.MaterializeResult:
        keys = partition_keys(context)
        batch = len(keys) > 1
        if batch:  # one progress line for the batch, not one per file
            progress.start(f"{len(keys)} files", "land", None)
        result = each_file(context, clickhouse, home, lambda key: _land_one(
            context, key, fmt, clickhouse, home, progress, batch=batch))
        if batch:
            progress.finish()
        return result

    return _landing


def _land_one(context: dg.AssetExecutionContext, key: str, fmt: str,
              clickhouse: ClickHouseResource, home: CreditlakeHome,
              progress: ProgressReporter, *, batch: bool) -> dict[str, object]:
    entry = home.registry().get(key)
    if entry.format and entry.format != fmt:  # detected once, when the file was registered
        raise dg.Failure(f"{entry.name} is {entry.format!r} content, not {fmt!r}: "
                         f"materialize landing/{entry.format} for this partition")
    if not batch:
        progress.start(key, "land", entry.size)
    with clickhouse.open() as engine:
        m = land(engine, home.home, entry, fmt=fmt, overrides=home.overrides(),
                 progress=progress.advance)
        if m.status == Status.QUARANTINED:
            write_log(engine, m)
    if not batch:
        progress.finish()
    if m.status == Status.QUARANTINED:
        context.log.warning(f"{entry.name} quarantined: {m.message}")
    meta = {
        **md.counts(m),
        "mapping": md.mapping_json(m),  # names the file's columns too
        "warnings": dg.MetadataValue.json(m.warnings),
        "seconds": dg.MetadataValue.float(round(m.seconds.get("land", 0.0), 3)),
    }
    if not batch:  # a batch's events stay small: each is serialized and stored per file
        meta["dagster/column_schema"] = md.source_schema(m)
    return meta


def build_landing_assets() -> list[dg.AssetsDefinition]:
    return [build_landing_asset(f) for f in landing_formats()]


def land_job_name(fmt: str) -> str:
    return f"land_{fmt}"


def build_land_jobs() -> list["UnresolvedAssetJobDefinition"]:
    """One job per format: a Dagster run covers one partition set, and each landing asset
    has its own (normalize + dedup then run as the `ingest` job on `landing_files`)."""
    return [dg.define_asset_job(
        land_job_name(f), selection=[landing_key(f)], executor_def=dg.in_process_executor,
        description=f"Land {f} files: read, map headers, stage as Arrow (then `ingest`).")
        for f in landing_formats()]
