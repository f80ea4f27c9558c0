"""dedup/records: deduplicate by record_hash and load into ClickHouse `records`."""


import dagster as dg

from assets import metadata as md
from assets.normalize import NORMALIZE_KEY
from assets.partitions import landing_files
from creditlake.ingest.load import load
from resources import ClickHouseResource, CreditlakeHome

RECORDS_KEY = dg.AssetKey(["dedup", "records"])


@dg.asset(
    key=RECORDS_KEY,
    partitions_def=landing_files,
    deps=[NORMALIZE_KEY],
    group_name="dedup",
    kinds={"clickhouse"},
    owners=["team:data"],
    tags={"stage": "dedup"},
    pool="clickhouse_load",  # loads are serialized: the anti-join must see earlier loads
    description="Loads the file's valid rows into the ClickHouse `records` table "
                "(ReplacingMergeTree). Duplicates within the file (LIMIT 1 BY record_hash) "
                "and against rows already loaded (anti-join) are counted, not loaded. "
                "Re-running a partition replaces its own rows. Writes the `ingestion_log` row.",
)
def dedup_records(context: dg.AssetExecutionContext, clickhouse: ClickHouseResource,
                  home: CreditlakeHome) -> dg.MaterializeResult:
    key = context.partition_key
    with clickhouse.open() as engine:
        m = load(engine, home.home, key)
        sample = engine.query_arrow(
            f"SELECT record_hash, email, name, phone, country, status, data_quality_score "
            f"FROM {engine.database}.records WHERE ingest_key = {{k:String}} LIMIT 10",
            {"k": key})
    total = sum(m.seconds.values())
    return dg.MaterializeResult(metadata={
        **md.counts(m),
        "loaded": dg.MetadataValue.int(m.loaded),
        "duplicates": dg.MetadataValue.int(m.duplicates),
        "quality_mean": dg.MetadataValue.float(round(m.quality_mean, 4)),
        "seconds_total": dg.MetadataValue.float(round(total, 3)),
        "rows_per_second": dg.MetadataValue.float(round(m.rows_read / total, 1) if total else 0),
        "dagster/column_schema": md.MASTER_SCHEMA,
        "dagster/row_count": dg.MetadataValue.int(m.loaded),
        "preview": md.preview(sample),
    })
