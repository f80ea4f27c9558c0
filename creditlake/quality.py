"""Data-quality checks as plain functions over ClickHouse (asset checks call these)."""

from __future__ import annotations

from dataclasses import dataclass, field

from creditlake.clickhouse.base import Engine


@dataclass
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict[str, object] = field(default_factory=dict)


def failure_rate_message(rate: float, limit: float) -> str:
    return (f"failure rate {rate:.3%} is above {limit:.3%}: valid rows held in staging "
            "(see rejected_records; re-run with --max-failure-rate to load anyway)")


def reconciliation(engine: Engine, partition_key: str | None = None) -> CheckOutcome:
    """rows_read = loaded + duplicates + rejected for every finished file (or one file)."""
    where = "WHERE status IN ('loaded', 'quarantined', 'failed')"
    params: dict[str, object] = {}
    if partition_key is not None:
        where += " AND partition_key = {k:String}"
        params["k"] = partition_key
    # one pass: each finished file's log row next to the rows it claims in the two tables
    rows = engine.query_rows(
        f"""SELECT l.partition_key, l.source_file, l.rows_read, l.loaded, l.duplicates,
                   l.rejected, ifNull(r.n, 0), ifNull(j.n, 0)
            FROM (SELECT * FROM {engine.database}.ingestion_log FINAL {where}) AS l
            LEFT JOIN (SELECT ingest_key, count() AS n FROM {engine.database}.records
                       GROUP BY ingest_key) AS r ON r.ingest_key = l.partition_key
            LEFT JOIN (SELECT partition_key, count() AS n FROM {engine.database}.rejected_records
                       GROUP BY partition_key) AS j ON j.partition_key = l.partition_key""",
        params)
    bad = [r for r in rows if r[2] != r[3] + r[4] + r[5]]
    mismatched = [(r[0], r[3], r[6], r[5], r[7]) for r in rows if r[3] != r[6] or r[5] != r[7]]
    ok = not bad and not mismatched
    return CheckOutcome(
        passed=ok,
        description=("rows_read = loaded + duplicates + rejected, and the log matches the "
                     "records/rejected_records tables" if ok else
                     f"{len(bad)} file(s) do not add up, {len(mismatched)} disagree with tables"),
        metadata={"files_checked": len(rows),
                  "unbalanced": [f"{r[1]}: read {r[2]} != {r[3]}+{r[4]}+{r[5]}" for r in bad][:10],
                  "table_mismatch": [str(r) for r in mismatched][:10]},
    )


def duplicate_hashes(engine: Engine, sample: int = 10) -> CheckOutcome:
    rows = engine.query_rows(
        f"SELECT record_hash, count() AS n FROM {engine.database}.records "
        f"GROUP BY record_hash HAVING n > 1 ORDER BY n DESC LIMIT {int(sample)}")
    return CheckOutcome(
        passed=not rows,
        description="record_hash is unique in records" if not rows else
        f"{len(rows)}+ record_hash values appear more than once",
        metadata={"sample": [f"{h.decode() if isinstance(h, bytes) else h} x{n}"
                             for h, n in rows]},
    )


def sample_rejected_rows(engine: Engine, partition_key: str, limit: int = 10) -> list[str]:
    rows = engine.query_rows(
        f"SELECT source_row, arrayStringConcat(reasons, '; ') FROM "
        f"{engine.database}.rejected_records WHERE partition_key = {{k:String}} "
        f"ORDER BY source_row LIMIT {int(limit)}", {"k": partition_key})
    return [f"row {r}: {why}" for r, why in rows]
