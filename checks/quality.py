
import warnings

import dagster as dg

from assets.batch import check_each, partition_keys
from assets.dedup import RECORDS_KEY
from assets.normalize import NORMALIZE_KEY
from assets.partitions import landing_files
from creditlake import quality
from creditlake.ingest.manifest import load_manifest
from resources import ClickHouseResource, CreditlakeHome

MIN_MEAN_QUALITY = 0.5
# Per-file checks need partitioned checks, a Dagster preview feature we rely on knowingly: its
# warning would otherwise print on every `creditlake ingest` and sensor run.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec",
                        category=dg.PreviewWarning)


@dg.asset_check(asset=NORMALIZE_KEY, name="failure_rate", partitions_def=landing_files,
                description="Rejected rows must stay below CREDITLAKE_MAX_FAILURE_RATE "
                            "(default 0.1%) of the rows read, or below CREDITLAKE_MIN_REJECTS "
                            "rows (default 10). Fails as ERROR but does not block: the valid "
                            "rows load, unless the source says `on_reject: block` (or the run "
                            "--block-on-rejects), which holds them in staging.")
def normalize_contacts_failure_rate(context: dg.AssetCheckExecutionContext,
                                    clickhouse: ClickHouseResource,
                                    home: CreditlakeHome) -> dg.AssetCheckResult:
    return check_each(context, lambda key: _failure_rate(key, clickhouse, home))


def _failure_rate(key: str, clickhouse: ClickHouseResource,
                  home: CreditlakeHome) -> dg.AssetCheckResult:
    m = load_manifest(home.home, key)
    policy = home.reject_policy()
    passed = not policy.exceeded(m)
    samples: list[str] = []
    if not passed:
        with clickhouse.open() as engine:
            samples = quality.sample_rejected_rows(engine, key)
    held = policy.holds(m, home.overrides().for_source(m.source_file))
    return dg.AssetCheckResult(
        passed=passed, severity=dg.AssetCheckSeverity.ERROR,
        description=None if passed else policy.message(m, held),
        metadata={"failure_rate": m.failure_rate, "rejected": m.rejected,
                  "rows_read": m.rows_read, "limit": policy.max_failure_rate,
                  "min_rejects": policy.min_rejects,
                  "on_reject": "block" if held or policy.block else "load",
                  "sample_rejected": samples})


@dg.asset_check(asset=NORMALIZE_KEY, name="quality_score", partitions_def=landing_files,
                description=f"Mean data_quality_score of loaded rows >= {MIN_MEAN_QUALITY}.")
def normalize_contacts_quality_score(context: dg.AssetCheckExecutionContext,
                                     home: CreditlakeHome) -> dg.AssetCheckResult:
    return check_each(context, lambda key: _quality_score(key, home))


def _quality_score(key: str, home: CreditlakeHome) -> dg.AssetCheckResult:
    m = load_manifest(home.home, key)
    hist = {f"{i / 10:.1f}": n for i, n in enumerate(m.quality_histogram)}
    return dg.AssetCheckResult(
        passed=m.valid == 0 or m.quality_mean >= MIN_MEAN_QUALITY,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quality_mean": round(m.quality_mean, 4), "histogram": hist})


@dg.asset_check(asset=RECORDS_KEY, name="reconciliation", partitions_def=landing_files,
                description="rows_read = loaded + duplicates + rejected for this file, and the "
                            "ingestion_log agrees with records and rejected_records.")
def dedup_records_reconciliation(context: dg.AssetCheckExecutionContext,
                                 clickhouse: ClickHouseResource) -> dg.AssetCheckResult:
    with clickhouse.open() as engine:  # one query for all the run's files
        outcomes = quality.reconciliation_by_file(engine, partition_keys(context))
    return check_each(context, lambda key: _reconciliation(outcomes[key]))


def _reconciliation(out: quality.CheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=out.passed, severity=dg.AssetCheckSeverity.ERROR,
                               description=out.description, metadata=out.metadata)


@dg.asset_check(asset=RECORDS_KEY, name="hash_uniqueness", partitions_def=landing_files,
                description="No record_hash loaded by this run appears twice in `records`.")
def dedup_records_hash_uniqueness(context: dg.AssetCheckExecutionContext,
                                  clickhouse: ClickHouseResource) -> dg.AssetCheckResult:
    with clickhouse.open() as engine:
        out = quality.duplicate_hashes(engine, partition_keys(context))
    return dg.AssetCheckResult(passed=out.passed, severity=dg.AssetCheckSeverity.ERROR,
                               description=out.description, metadata=out.metadata)


QUALITY_CHECKS = [normalize_contacts_failure_rate, normalize_contacts_quality_score,
                  dedup_records_reconciliation, dedup_records_hash_uniqueness]
