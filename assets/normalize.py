"""normalize/contacts: clean + Pandera-validate the landed rows of one file."""


import dagster as dg

from assets import metadata as md
from assets.batch import SINGLE_RUN, each_file, partition_keys
from assets.landing import landing_formats, landing_key
from assets.partitions import landing_files
from assets.spark import ProcessingConfig
from creditlake.ingest.manifest import Manifest, Status, stage_table
from creditlake.ingest.normalize import normalize, normalize_many
from resources import ClickHouseResource, CreditlakeHome, ProgressReporter

NORMALIZE_KEY = dg.AssetKey(["normalize", "contacts"])


@dg.asset(
    key=NORMALIZE_KEY,
    partitions_def=landing_files,
    # each file's partition key is the same in its format's set and in landing_files
    deps=[dg.AssetDep(landing_key(f), partition_mapping=dg.IdentityPartitionMapping())
          for f in landing_formats()],
    group_name="normalize",
    kinds={"polars", "pandera", "clickhouse"},
    owners=["team:data"],
    tags={"stage": "normalize"},
    backfill_policy=SINGLE_RUN,
    metadata={"dagster/column_schema": md.MASTER_SCHEMA},  # the same for every file
    description="Cleans the landed rows (trim, lower-case e-mails, E.164 phones, ISO "
                "countries, dates, status vocabulary) and validates them with the Pandera "
                "model ContactNormalized. Findings become `validation_errors` and lower the "
                "`data_quality_score`; rows without a usable identity go to `rejected_records`. "
                "Output: a ClickHouse staging table with record_hash computed on insert.",
)
def normalize_contacts(context: dg.AssetExecutionContext, config: ProcessingConfig,
                       clickhouse: ClickHouseResource, home: CreditlakeHome,
                       progress: dg.ResourceParam[ProgressReporter]) -> dg.MaterializeResult:
    preview = len(partition_keys(context)) == 1  # a batch's metadata has per-file counts only
    return each_file(context, clickhouse, home, lambda key: _normalize_one(
        key, config, clickhouse, home, progress, preview=preview),
        many=lambda keys: _normalize_many(keys, config, clickhouse, home, progress))


def _normalize_one(key: str, config: ProcessingConfig, clickhouse: ClickHouseResource,
                   home: CreditlakeHome, progress: ProgressReporter, *,
                   preview: bool) -> dict[str, object]:
    progress.start(key, "normalize", None)
    with clickhouse.open() as engine:
        m = normalize(engine, home.home, key, processing=home.processing(),
                      backend=config.processing or None, overrides=home.overrides(),
                      progress=progress.advance)
        sample = engine.query_arrow(
            f"SELECT source_row, email, name, phone, country, created_date, status, "
            f"data_quality_score, validation_errors FROM {stage_table(engine, key)} "
            "ORDER BY source_row LIMIT 10") if preview and m.status == Status.NORMALIZED else None
    progress.finish()
    meta = _metadata(m)
    if sample is not None:
        meta["preview"] = md.preview(sample)
    return meta


def _normalize_many(keys: list[str], config: ProcessingConfig, clickhouse: ClickHouseResource,
                    home: CreditlakeHome, progress: ProgressReporter
                    ) -> dict[str, dict[str, object] | Exception]:
    """A batch: the files normalized together (normalize_many), each with its metadata."""
    progress.start(f"{len(keys)} files", "normalize", None)
    with clickhouse.open() as engine:
        got = normalize_many(engine, home.home, keys, processing=home.processing(),
                             backend=config.processing or None, overrides=home.overrides(),
                             progress=progress.advance)
    progress.finish()
    return {k: m if isinstance(m, Exception) else _metadata(m, batch=True)
            for k, m in got.items()}


def _metadata(m: Manifest, *, batch: bool = False) -> dict[str, object]:
    meta: dict[str, object] = {
        **md.counts(m), **md.quality(m),
        "valid": dg.MetadataValue.int(m.valid),
        "seconds": dg.MetadataValue.float(round(m.seconds.get("normalize", 0.0), 3)),
    }
    if not batch:  # a batch's events stay small: each is serialized and stored per file
        meta["dagster/column_schema"] = md.MASTER_SCHEMA
        # normalize keeps the file's format and mappings: the landed lineage is the manifest's
        meta["dagster/column_lineage"] = md.column_lineage(m, landing_key(m.format or "csv"))
    return meta
