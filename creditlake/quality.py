"""Data-quality checks as plain functions over ClickHouse (asset checks call these)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from creditlake.clickhouse.base import Engine
from creditlake.clickhouse.ddl import HASH_HEX
from creditlake.ingest.hashes import drifted
from creditlake.ingest.manifest import Status, stage_table


@dataclass
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict[str, object] = field(default_factory=dict)


def reconciliation(engine: Engine, partition_key: str | None = None) -> CheckOutcome:
    """For every file in every status (or one file): rows_read = loaded + duplicates +
    rejected + held, loaded and rejected match the rows in `records` and `rejected_records`,
    and a blocked file's held rows are still in its stage table."""
    keys = None if partition_key is None else [partition_key]
    return _outcome(_log_vs_tables(engine, keys), engine)


def reconciliation_by_file(engine: Engine, keys: Sequence[str]) -> dict[str, CheckOutcome]:
    """reconciliation() of each of `keys`, from one query for all of them (a batch's check)."""
    rows = _log_vs_tables(engine, keys)
    by_key = {k: [r for r in rows if r[0] == k] for k in keys}
    return {k: _outcome(by_key[k], engine) for k in keys}


def _log_vs_tables(engine: Engine, keys: Sequence[str] | None) -> list[tuple]:
    """Each file's log row next to the rows it claims in records and rejected_records."""
    db, params = engine.database, {}
    log_where = records_where = rejects_where = ""
    if keys is not None:
        params = {"keys": list(keys)}
        log_where = "WHERE partition_key IN {keys:Array(String)}"
        records_where = "WHERE ingest_key IN {keys:Array(String)}"
        rejects_where = log_where
    return engine.query_rows(
        f"""SELECT l.partition_key, l.source_file, l.rows_read, l.loaded, l.duplicates,
                   l.rejected, l.held, l.status, ifNull(r.n, 0), ifNull(j.n, 0)
            FROM (SELECT * FROM {db}.ingestion_log FINAL {log_where}) AS l
            LEFT JOIN (SELECT ingest_key, count() AS n FROM {db}.records {records_where}
                       GROUP BY ingest_key) AS r ON r.ingest_key = l.partition_key
            LEFT JOIN (SELECT partition_key, count() AS n FROM {db}.rejected_records
                       {rejects_where} GROUP BY partition_key) AS j
                ON j.partition_key = l.partition_key""",
        params)


def _outcome(rows: list[tuple], engine: Engine) -> CheckOutcome:
    bad = [r for r in rows if r[2] != r[3] + r[4] + r[5] + r[6]]
    mismatched = [f"{r[1]}: loaded {r[3]} vs {r[8]} in records, rejected {r[5]} vs {r[9]} "
                  "in rejected_records" for r in rows if r[3] != r[8] or r[5] != r[9]]
    mismatched += [f"{r[1]}: held {r[6]} vs {n} in its stage table" for r in rows
                   if r[7] == Status.BLOCKED and (n := _staged(engine, r[0])) != r[6]]
    ok = not bad and not mismatched
    return CheckOutcome(
        passed=ok,
        description=("rows_read = loaded + duplicates + rejected + held, and the log matches "
                     "the records/rejected_records/stage tables" if ok else
                     f"{len(bad)} file(s) do not add up, {len(mismatched)} disagree with tables"),
        metadata={"files_checked": len(rows),
                  "unbalanced": [f"{r[1]} ({r[7]}): read {r[2]} != {r[3]}+{r[4]}+{r[5]}+{r[6]}"
                                 for r in bad][:10],
                  "table_mismatch": mismatched[:10]},
    )


def _staged(engine: Engine, key: str) -> int:
    """Rows in a partition's stage table (0 when it is gone)."""
    table = stage_table(engine, key)
    name = table.split(".", 1)[1]
    exists = engine.query_rows("SELECT count() FROM system.tables WHERE database = {d:String} "
                               "AND name = {t:String}", {"d": engine.database, "t": name})
    return int(engine.query_rows(f"SELECT count() FROM {table}")[0][0]) if exists[0][0] else 0


DUPLICATED = "GROUP BY record_hash HAVING n > 1 ORDER BY n DESC"


def duplicate_hashes(engine: Engine, keys: list[str] | None = None,
                     sample: int = 10) -> CheckOutcome:
    """record_hash values stored more than once. With `keys` (a run's partitions) only the
    hashes those files loaded are looked at: grouping the whole table after every load costs
    memory and time that grow with the table (3.9 GB after 54M rows)."""
    metadata: dict[str, object] = {}
    if keys is None:
        rows = engine.query_rows(f"SELECT record_hash, count() AS n FROM "
                                 f"{engine.database}.records {DUPLICATED} LIMIT {int(sample)}")
    else:  # read from record_hashes, which the load brought in step before it inserted
        # (a check only reports: another run may be loading, so a repair here could race it)
        metadata["record_hashes_out_of_step"] = drifted(engine)
        rows = _run_duplicates(engine, sample, keys)
    metadata["sample"] = [f"{h.decode() if isinstance(h, bytes) else h} x{n}" for h, n in rows]
    return CheckOutcome(
        passed=not rows,
        description="record_hash is unique in records" if not rows else
        f"{len(rows)}+ record_hash values appear more than once",
        metadata=metadata,
    )


# Up to this many rows in a run, its duplicate hashes are found by filtering record_hashes
# to the run's own hashes and grouping those (a hash table of this size, ~100 MB); beyond it
# the in-order scan of the whole table, which keeps no hash table. 1M run rows against 40M
# loaded: 2.4-2.7 s filtered, 7.0-7.7 s scanned; against 10M: 0.7-1.0 s vs 1.6 s.
RUN_FILTER_MAX_ROWS = 2_000_000


def _run_duplicates(engine: Engine, sample: int, keys: list[str]) -> list[tuple]:
    """Hashes of the run's rows that repeat, among them or in other files' rows, read from
    record_hashes (16 bytes a row, in hash order) rather than records' hash strings: 10M
    rows took 3.1 s and 250 MB in order, where grouping records took 6-7 s and 1.4 GB. The
    few found are then counted exactly in records (bloom filter)."""
    db, params = engine.database, {"keys": keys}
    run_rows = engine.query_rows(f"SELECT count() FROM {db}.record_hashes "
                                 f"WHERE ingest_key IN {{keys:Array(String)}}", params)[0][0]
    if not run_rows:
        return []
    if run_rows <= RUN_FILTER_MAX_ROWS:
        sql = (f"SELECT {HASH_HEX} FROM {db}.record_hashes WHERE hash IN (SELECT hash FROM "
               f"{db}.record_hashes WHERE ingest_key IN {{keys:Array(String)}}) "
               f"GROUP BY hash HAVING count() > 1 LIMIT {int(sample)}")
        settings = None
    else:
        sql = (f"SELECT {HASH_HEX} FROM {db}.record_hashes GROUP BY hash HAVING count() > 1 "
               f"AND countIf(ingest_key IN {{keys:Array(String)}}) > 0 LIMIT {int(sample)}")
        settings = {"optimize_aggregation_in_order": 1}
    found = [h for (h,) in engine.query_rows(sql, params, settings=settings)]
    if not found:
        return []
    return engine.query_rows(f"SELECT record_hash, count() AS n FROM {db}.records "
                             f"WHERE record_hash IN {{c:Array(String)}} {DUPLICATED}",
                             {"c": found})


def sample_rejected_rows(engine: Engine, partition_key: str, limit: int = 10) -> list[str]:
    rows = engine.query_rows(
        f"SELECT source_row, arrayStringConcat(reasons, '; ') FROM "
        f"{engine.database}.rejected_records WHERE partition_key = {{k:String}} "
        f"ORDER BY source_row LIMIT {int(limit)}", {"k": partition_key})
    return [f"row {r}: {why}" for r, why in rows]
