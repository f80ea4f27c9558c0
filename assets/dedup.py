"""dedup/records: deduplicate by record_hash and load into ClickHouse `records`."""

import contextlib
from pathlib import Path

import dagster as dg

from assets import metadata as md
from assets.batch import SINGLE_RUN, batch_result, each_file, partition_keys
from assets.normalize import NORMALIZE_KEY
from assets.partitions import landing_files
from creditlake.ingest.load import drop_batch_stages, load, load_many
from creditlake.ingest.manifest import load_manifest
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
    backfill_policy=SINGLE_RUN,
    metadata={"dagster/column_schema": md.MASTER_SCHEMA},  # the same for every file
    description="Loads the file's valid rows into the ClickHouse `records` table "
                "(ReplacingMergeTree). Duplicates within the file (LIMIT 1 BY record_hash) "
                "and against rows already loaded (anti-join) are counted, not loaded. "
                "Re-running a partition replaces its own rows. Writes the `ingestion_log` row. "
                "Row count is the table's total; `loaded` is this file's share. A file whose "
                "source says `on_reject: block` and whose rejects exceed the limit is held "
                "(status blocked, `held` rows in staging) instead of loaded.",
)
def dedup_records(context: dg.AssetExecutionContext, clickhouse: ClickHouseResource,
                  home: CreditlakeHome) -> dg.MaterializeResult:
    keys = partition_keys(context)
    if len(keys) > 1:
        try:  # the whole batch in a few statements; if that fails, file by file below
            with clickhouse.open() as engine:
                loaded = load_many(engine, home.home, keys, policy=home.reject_policy(),
                                   rule=home.overrides().for_source)
            return batch_result(context, {m.key: {**md.counts(m), "loaded": m.loaded,
                                                  "duplicates": m.duplicates} for m in loaded})
        except Exception as exc:  # noqa: BLE001 - retried per file, where errors are per file
            context.log.warning(f"batch load failed ({type(exc).__name__}: {exc}); "
                                "loading file by file")
    tables = batch_stages(home.home, keys) if len(keys) > 1 else set()
    result = each_file(context, clickhouse, home,
                       lambda key: _load_one(key, clickhouse, home, batch=len(keys) > 1))
    if tables:
        with clickhouse.open() as engine:
            drop_batch_stages(engine, home.home, tables, keys)
    return result


def batch_stages(home: Path, keys: list[str]) -> set[str]:
    """The batch stage tables the files' rows are in (dropped once they are loaded)."""
    tables = set()
    for key in keys:
        with contextlib.suppress(FileNotFoundError):  # never landed: fails in its step
            tables.add(load_manifest(home, key).stage)
    return tables - {""}


def _load_one(key: str, clickhouse: ClickHouseResource, home: CreditlakeHome, *,
              batch: bool) -> dict[str, object]:
    source = load_manifest(home.home, key).source_file
    with clickhouse.open() as engine:
        m = load(engine, home.home, key, policy=home.reject_policy(),
                 rule=home.overrides().for_source(source))
        if batch:  # a batch: per-file counts only, no preview query per file
            return {**md.counts(m), "loaded": m.loaded, "duplicates": m.duplicates}
        sample = engine.query_arrow(
            f"SELECT record_hash, email, name, phone, country, status, data_quality_score "
            f"FROM {engine.database}.records WHERE ingest_key = {{k:String}} LIMIT 10",
            {"k": key})
        # the table's size, not this file's: "Row count" in the UI is read as the table's
        table_rows = int(engine.query_rows(
            f"SELECT count() FROM {engine.database}.records")[0][0])
    total = sum(m.seconds.values())
    return {
        **md.counts(m),
        "loaded": dg.MetadataValue.int(m.loaded),
        "duplicates": dg.MetadataValue.int(m.duplicates),
        "quality_mean": dg.MetadataValue.float(round(m.quality_mean, 4)),
        "seconds_total": dg.MetadataValue.float(round(total, 3)),
        "rows_per_second": dg.MetadataValue.float(round(m.rows_read / total, 1) if total else 0),
        "dagster/column_schema": md.MASTER_SCHEMA,
        "dagster/row_count": dg.MetadataValue.int(table_rows),
        "records_total": dg.MetadataValue.int(table_rows),
        "preview": md.preview(sample),
    }
