"""Keep record_hashes equal to records' hashes, file version by file version.

record_hashes is filled by a view on every insert into records and emptied by the load's
deletes (ingest/load.py). It can still drift: a ReplacingMergeTree merge that collapses two
rows sharing a hash keeps both hashes, a process killed between a re-run's two DELETEs or
between a block's write and its view's leaves rows without hashes, and two processes filling
an older home at once copy hashes twice. A hash whose row is gone makes a new row with that
hash count as a duplicate of nothing, so every load checks before it inserts."""

from __future__ import annotations

import logging

from creditlake.clickhouse.base import Engine
from creditlake.clickhouse.ddl import HASH_KEY
from creditlake.clickhouse.ddl_cluster import delete_target

log = logging.getLogger(__name__)


def hash_drift(engine: Engine) -> list[str]:
    """ingest_keys whose rows in records and hashes in record_hashes differ in number (one
    GROUP BY of each table's LowCardinality ingest_key: 0.3-0.7 s at 20M rows)."""
    db = engine.database
    return [k for (k,) in engine.query_rows(
        f"SELECT ingest_key FROM "
        f"(SELECT ingest_key, count() AS n FROM {db}.records GROUP BY ingest_key) AS r "
        f"FULL OUTER JOIN "
        f"(SELECT ingest_key, count() AS n FROM {db}.record_hashes GROUP BY ingest_key) AS h "
        f"USING ingest_key WHERE r.n != h.n ORDER BY ingest_key",
        settings={"join_use_nulls": 0})]


def sync_record_hashes(engine: Engine) -> list[str]:
    """Re-copy the hashes of every file version whose count disagrees; returns those keys.
    Two total counts first (milliseconds), so a table in step costs nearly nothing."""
    db = engine.database
    rows, hashes = engine.query_rows(f"SELECT (SELECT count() FROM {db}.records), "
                                     f"(SELECT count() FROM {db}.record_hashes)")[0]
    if rows == hashes:
        return []
    keys = hash_drift(engine)
    if keys:
        p = {"keys": keys}
        engine.command(f"DELETE FROM {delete_target(engine, 'record_hashes')} "
                       "WHERE ingest_key IN {keys:Array(String)}", p)
        engine.command(f"INSERT INTO {db}.record_hashes SELECT {HASH_KEY}, ingest_key "
                       f"FROM {db}.records WHERE ingest_key IN {{keys:Array(String)}}", p)
        log.info("record_hashes repaired for %d file version(s): %s", len(keys),
                 ", ".join(keys[:5]) + (" ..." if len(keys) > 5 else ""))
    return keys
