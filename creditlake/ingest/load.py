"""Stage 3, load: one INSERT ... SELECT per chunk dedups the partition's stage table within the
file (first row of each record_hash) and against the hashes already loaded (an anti-join on
record_hashes, the hash-ordered copy of records' hashes, brought in step first by
ingest/hashes.py), then the ingestion_log row.
Re-running replaces the partition's own rows (by ingest_key), so it is idempotent. The reject
policy (ingest/policy.py) decides first whether the file's valid rows load or are held."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from creditlake.clickhouse.base import Engine
from creditlake.clickhouse.ddl import HASH_KEY, bucket_range_sql, hash_range_sql, hash_ranges
from creditlake.clickhouse.ddl_cluster import delete_target, table_engine
from creditlake.ingest.accounting import record, record_many
from creditlake.ingest.hashes import sync_record_hashes
from creditlake.ingest.manifest import (
    MERGE_FREE_SETTINGS,
    Manifest,
    Status,
    landed_path,
    load_manifest,
    own_stage,
    stage_rows,
    stage_table,
    staged_in,
)
from creditlake.ingest.overrides import SourceRule
from creditlake.ingest.policy import RejectPolicy

# Rows per INSERT ... SELECT: its hash sets and insert blocks are what the load holds in
# memory (a 4M-row chunk peaked 1.15 GB above the process's base, a 1M-row one 0.3 GB);
# each later chunk re-reads the hashes already loaded (16 bytes each in record_hashes).
LOAD_CHUNK_ROWS = 1_000_000
_COLS = ("user_id", "email", "name", "phone", "address", "city", "country")


# A row's place in load order as one number: its file's order, then its row (seq < 2^40 in
# any file). Each hash's first row is then a min() of a UInt64, not an argMin over the
# (file_ord, seq) tuple: 0.5-1.0 s less per 1M-row chunk, empty table or 20M hashes loaded.
_LOAD_ORDER = "(bitShiftLeft(toUInt64(file_ord), 40) + seq)"


def _insert_sql(db: str, source: str, key_expr: str, *, against_loaded: bool = True,
                hash_range: str = "1", target: str = "") -> str:
    """INSERT new rows of `source` (stage columns + file_ord) into records (or `target`, a
    table like it whose parts join records later: _into_records): first by
    (file_ord, seq) wins within it, hashes already in `records` (record_hashes) are skipped
    (against_loaded=False: none are loaded yet, so the anti-join is left out). hash_range:
    a condition on record_hashes.hash that holds for every hash in `source` (its chunk's
    range), so the anti-join reads only that range of the hash-ordered table.

    The winners are picked by a GROUP BY (parallel) and a semi-join on their unique load
    order, not by ORDER BY ... LIMIT 1 BY: the sort made the whole INSERT one stream, so the
    part writing into `records` ran on one thread (2.5x slower at 1M rows)."""
    select_cols = ", ".join(f"ifNull({c}, '')" for c in _COLS)
    anti_join = (f"""AND {HASH_KEY} NOT IN (
                SELECT hash FROM {db}.record_hashes
                WHERE {hash_range} AND hash IN (SELECT {HASH_KEY} FROM {source}))"""
                 if against_loaded else "")
    return f"""
        INSERT INTO {target or f"{db}.records"} (id, source_file, record_hash, ingested_at,
            {', '.join(_COLS)}, created_date, status, metadata, data_quality_score,
            validation_errors, ingest_key)
        SELECT generateUUIDv4(), source_file, record_hash, now64(3), {select_cols},
            created_date, status, metadata, data_quality_score, validation_errors, {key_expr}
        FROM {source}
        WHERE {_LOAD_ORDER} IN (SELECT min({_LOAD_ORDER}) FROM {source} GROUP BY record_hash)
            {anti_join}
    """


def _hashes_loaded(engine: Engine) -> bool:
    """Whether record_hashes has any row (part metadata): a first load into an empty table
    skips the anti-join (0.3-0.5 s of a 1M-row chunk spent building a set of its hashes)."""
    return bool(engine.query_rows(
        f"SELECT count() FROM {engine.database}.record_hashes")[0][0])


# Insert-side threads: the SELECT above is parallel, so writing its parts can be too; the
# view that copies the hashes into record_hashes runs beside each block's write instead of
# after it (1M rows: +0.8 s for the view one after the other, +0.1-0.3 s beside). Blocks of
# 512K rows instead of the default ~1M: with the default, a 1M-row chunk's insert ran on
# 1.25 cores, its parts' sorting, compression and indexes mostly at its end (4.2-4.4 s); with
# 128K-512K blocks, 2.2-2.7 s in the merge-free load below (measured, not traced further).
INSERT_SETTINGS = {"optimize_on_insert": 0,  # deduped above already
                   "max_insert_threads": os.cpu_count() or 1,
                   "parallel_view_processing": 1,
                   "min_insert_block_size_rows": 524_288}

# A file of several chunks writes them into a copy of `records` that never merges, whose
# parts then join `records` at once (ATTACH PARTITION ... FROM: no copy), at least every
# ATTACH_ROWS rows. Merging chunk k's parts while chunk k+1 was written took the cores from
# the load (10M rows: 49-51 s / 86 CPU s, now 28-32 s / 51-55 CPU s, on a slower machine
# than the README's); `records` merges them in the background afterwards, as it merges any
# insert's parts. Readers see a file's rows appear ATTACH_ROWS at a time, not chunk by chunk.
ATTACH_ROWS = 16_000_000
MERGE_FREE_FROM = 3  # chunks: with two, the first one's merges cost less than the copy (1M rows)


def insert_new_records(engine: Engine, table: str, key: str, rows: int) -> None:
    """Insert a stage table's rows into `records` under ingest_key `key`, skipping duplicates
    within the table (first by seq wins) and hashes already in `records`."""
    # Chunks by hash range keep ClickHouse's hash sets bounded for huge files. Every copy of
    # a hash is in the same chunk, so each chunk dedups the file on its own, and only hashes
    # loaded before this file need the anti-join: none on a first load, and otherwise only
    # the chunk's range of record_hashes is read (10M rows into an empty table: 10 chunks
    # without the anti-join, where row-order chunks needed it from the second on).
    against = _hashes_loaded(engine)
    ranges = hash_ranges(rows, LOAD_CHUNK_ROWS)
    per_attach = max(ATTACH_ROWS // LOAD_CHUNK_ROWS, 1)
    merge_free = len(ranges) >= MERGE_FREE_FROM
    for first in range(0, len(ranges), per_attach):
        with _into_records(engine, key, merge_free=merge_free) as target:
            for lo, hi in ranges[first:first + per_attach]:
                chunk = (f"(SELECT *, 0 AS file_ord FROM {table} "
                         f"WHERE {bucket_range_sql(lo, hi)})")
                engine.command(_insert_sql(engine.database, chunk, "{k:String}",
                                           against_loaded=against,
                                           hash_range=hash_range_sql(lo, hi), target=target),
                               {"k": key}, settings=INSERT_SETTINGS)


def load_table(engine: Engine, key: str) -> str:
    """The merge-free copy of records a big file's load writes into (_into_records)."""
    return f"{stage_table(engine, key)}_load"


@contextlib.contextmanager
def _into_records(engine: Engine, key: str, *, merge_free: bool) -> Iterator[str]:
    """The table a load's inserts go to: `records` itself (merge_free=False, or on a cluster,
    where records is Distributed), else a merge-free copy of it whose parts are attached to
    `records` and whose hashes are copied to record_hashes once the inserts are done (rows
    first, as delete_loaded orders it: a run killed in between leaves rows without hashes,
    which sync_record_hashes gives back). An insert that fails leaves this group's rows out
    of `records` (earlier groups of a file over ATTACH_ROWS are in; a re-run replaces all)."""
    db = engine.database
    if not merge_free or table_engine(engine, "records") == "Distributed":
        yield f"{db}.records"
        return
    into = load_table(engine, key)
    try:
        engine.command(f"DROP TABLE IF EXISTS {into}")  # a killed run's
        engine.command(f"CREATE TABLE {into} AS {db}.records")  # the same columns, key, indexes
        engine.command(f"ALTER TABLE {into} MODIFY SETTING {MERGE_FREE_SETTINGS}")
        yield into
        # records has no PARTITION BY: its one partition is tuple()
        engine.command(f"ALTER TABLE {db}.records ATTACH PARTITION tuple() FROM {into}")
        engine.command(f"INSERT INTO {db}.record_hashes SELECT {HASH_KEY}, ingest_key "
                       f"FROM {into}")
    finally:
        engine.command(f"DROP TABLE IF EXISTS {into}")


def insert_new_records_of_files(engine: Engine, files: Sequence[Manifest]) -> None:
    """insert_new_records for several files at once, in one INSERT ... SELECT: the same
    result as inserting them one after the other in this order (a row whose hash an earlier
    file already has is a duplicate of the later file). Files staged in a batch table are
    read from it in one branch, their file order mapped from partition_key."""
    branches: list[str] = []
    params: dict[str, object] = {"keys": [m.key for m in files]}
    shared: dict[str, list[str]] = {}
    for i, m in enumerate(files):
        if m.stage:
            shared.setdefault(m.stage, []).append(m.key)
        else:
            branches.append(f"SELECT *, toUInt32({i}) AS file_ord "
                            f"FROM {stage_table(engine, m.key)}")
    for n, (table, keys) in enumerate(shared.items()):
        params[f"b{n}"] = keys
        branches.append(
            f"SELECT * EXCEPT partition_key, "
            f"toUInt32(indexOf({{keys:Array(String)}}, partition_key) - 1) AS file_ord "
            f"FROM {table} WHERE partition_key IN {{b{n}:Array(String)}}")
    union = " UNION ALL ".join(branches)
    engine.command(_insert_sql(engine.database, f"({union})", "{keys:Array(String)}[file_ord + 1]",
                               against_loaded=_hashes_loaded(engine)),
                   params, settings=INSERT_SETTINGS)


def delete_loaded(engine: Engine, keys: Sequence[str]) -> None:
    """Remove what earlier loads of `keys` put in records, hashes first. A run killed
    between the two leaves rows without their hashes rather than hashes without rows; the
    next load's sync_record_hashes gives them back before it inserts.

    Only keys that have rows are deleted: a DELETE is a mutation that waits for the merges
    running on `records`, 68 s once for a file that had nothing to delete (20M rows)."""
    db, p = engine.database, {"keys": list(keys)}
    have = [k for (k,) in engine.query_rows(
        f"SELECT DISTINCT ingest_key FROM {db}.records WHERE ingest_key IN {{keys:Array(String)}} "
        f"UNION DISTINCT SELECT DISTINCT ingest_key FROM {db}.record_hashes "
        f"WHERE ingest_key IN {{keys:Array(String)}}", p)]
    if not have:
        return
    for table in ("record_hashes", "records"):
        engine.command(f"DELETE FROM {delete_target(engine, table)} "
                       "WHERE ingest_key IN {keys:Array(String)}", {"keys": have})


def loaded_count(engine: Engine, key: str) -> int:
    return int(engine.query_rows(f"SELECT count() FROM {engine.database}.records "
                                 "WHERE ingest_key = {k:String}", {"k": key})[0][0])


def load(engine: Engine, home: Path, key: str, *, policy: RejectPolicy | None = None,
         rule: SourceRule | None = None, keep_staging: bool = False) -> Manifest:
    """Dedup the stage table within the file and against `records`, insert, account. With a
    policy, a file whose rejects exceed it is held (status blocked, staging kept) when the
    policy or the source's rule says block, and loaded with a warning otherwise."""
    t0 = time.perf_counter()
    m = load_manifest(home, key)
    loadable = m.status in (Status.NORMALIZED, Status.LOADED, Status.BLOCKED)
    if loadable and not engine.query_rows(f"EXISTS TABLE {staged_in(engine, m)}")[0][0]:
        if m.status == Status.LOADED:  # loaded before, staging dropped: keep its rows as they are
            return m
        raise FileNotFoundError(f"{m.source_file}: its stage table {staged_in(engine, m)} "
                                f"is gone; materialize normalize/contacts for {key} first")
    if loadable and policy is not None and policy.exceeded(m):
        held = policy.holds(m, rule or SourceRule())
        note = policy.message(m, held)
        if held:
            own_stage(engine, m)  # its batch's table goes when the batch is loaded
            m.status, m.message = Status.BLOCKED, note
            m.seconds["load"] = time.perf_counter() - t0
            record(engine, home, m)
            return m
        if note not in m.warnings:
            m.warnings.append(note)
    if loadable:
        delete_loaded(engine, [key])
        sync_record_hashes(engine)  # after the delete: keys about to go are not copied
        insert_new_records(engine, stage_rows(engine, m), key, m.valid)
        m.loaded = loaded_count(engine, key)
        m.duplicates = m.valid - m.loaded
        m.status = Status.LOADED
    m.seconds["load"] = time.perf_counter() - t0
    if not keep_staging:
        m.stage = ""  # its rows in a batch table are no longer needed (load_many drops it)
    record(engine, home, m)
    if not keep_staging:  # with a killed earlier run's merge-free table, if any
        engine.command(f"DROP TABLE IF EXISTS {stage_table(engine, key)}, "
                       f"{load_table(engine, key)}")
        landed_path(home, key).unlink(missing_ok=True)
    return m


def load_many(engine: Engine, home: Path, keys: Sequence[str], *, policy: RejectPolicy,
              rule: Callable[[str], SourceRule]) -> list[Manifest]:
    """load() for a batch of small files (rule: source file -> its SourceRule), with a
    handful of statements for the whole batch instead of ~8 per file: one DELETE of earlier
    loads (only if any, delete_loaded), one INSERT ... SELECT per LOAD_CHUNK_ROWS of rows,
    one count, one ingestion_log insert, one DROP. Same outcome as load() of each key in
    this order: each file keeps its own loaded/duplicates counts, status and ingestion_log
    row."""
    t0 = time.perf_counter()
    manifests = [load_manifest(home, k) for k in keys]
    batch_tables = {m.stage for m in manifests if m.stage}
    staged = {f"{engine.database}.{r[0]}" for r in engine.query_rows(
        "SELECT name FROM system.tables WHERE database = {d:String} "
        "AND name IN {t:Array(String)}",
        {"d": engine.database, "t": [t.split(".", 1)[1] for t in
                                     [*batch_tables, *(stage_table(engine, k) for k in keys)]]})}
    loading: list[Manifest] = []
    kept: list[Manifest] = []  # loaded before, staging dropped since: rows kept as they are
    for m in manifests:
        if m.status not in (Status.NORMALIZED, Status.LOADED, Status.BLOCKED):
            continue
        if staged_in(engine, m) not in staged:
            if m.status == Status.LOADED:
                kept.append(m)
            else:  # as load() raises it for one file: this file fails, the batch goes on
                m.status, m.message = Status.FAILED, (
                    f"FileNotFoundError: {m.source_file}: its stage table "
                    f"{staged_in(engine, m)} is gone; materialize normalize/contacts "
                    f"for {m.key} first")
            continue
        if policy.exceeded(m):
            held = policy.holds(m, rule(m.source_file))
            note = policy.message(m, held)
            if held:
                own_stage(engine, m)  # its rows outlive the batch's table
                m.status, m.message = Status.BLOCKED, note
                continue
            if note not in m.warnings:
                m.warnings.append(note)
        loading.append(m)
    if loading:
        db, names = engine.database, {"keys": [m.key for m in loading]}
        delete_loaded(engine, names["keys"])
        sync_record_hashes(engine)
        for group in _row_groups(loading):
            if len(group) == 1:
                insert_new_records(engine, stage_rows(engine, group[0]), group[0].key,
                                   group[0].valid)
            else:
                insert_new_records_of_files(engine, group)
        counts = dict(engine.query_rows(
            f"SELECT ingest_key, count() FROM {db}.records "
            "WHERE ingest_key IN {keys:Array(String)} GROUP BY ingest_key", names))
        for m in loading:
            m.loaded = int(counts.get(m.key, 0))
            m.duplicates = m.valid - m.loaded
            m.status = Status.LOADED
    changed = [m for m in manifests if all(m is not k for k in kept)]
    share = (time.perf_counter() - t0) / max(len(changed), 1)
    done = [m for m in changed if m.status != Status.BLOCKED]  # held rows stay in staging
    for m in changed:
        m.seconds["load"] = share
    for m in done:
        m.stage = ""
    record_many(engine, home, changed)
    if done:
        engine.command("DROP TABLE IF EXISTS "
                       + ", ".join(stage_table(engine, m.key) for m in done))
    drop_batch_stages(engine, home, batch_tables & staged, keys)
    for m in done:
        landed_path(home, m.key).unlink(missing_ok=True)
    return manifests


def drop_batch_stages(engine: Engine, home: Path, tables: set[str], keys: Sequence[str]
                      ) -> None:
    """Drop the batch stage tables no file still needs, once `keys` (whose manifests are
    up to date) were loaded or held."""
    drop = [t for t in tables if engine.query_rows(f"EXISTS TABLE {t}")[0][0]
            and _unneeded(engine, home, t, set(keys))]
    if drop:
        engine.command("DROP TABLE IF EXISTS " + ", ".join(drop))


def _unneeded(engine: Engine, home: Path, table: str, handled: set[str]) -> bool:
    """No file but the handled ones still reads its stage rows from the batch table (a load
    of part of a batch keeps it for the others)."""
    for (key,) in engine.query_rows(f"SELECT DISTINCT partition_key FROM {table}"):
        if key not in handled:
            with contextlib.suppress(FileNotFoundError):
                if load_manifest(home, key).stage == table:
                    return False
    return True


def _row_groups(manifests: Sequence[Manifest]) -> list[list[Manifest]]:
    """Consecutive files with at most LOAD_CHUNK_ROWS valid rows together (a bigger file
    alone), in order: ClickHouse's hash sets stay bounded as in insert_new_records."""
    groups: list[list[Manifest]] = []
    rows = 0
    for m in manifests:
        if groups and rows + m.valid <= LOAD_CHUNK_ROWS:
            groups[-1].append(m)
            rows += m.valid
        else:
            groups.append([m])
            rows = m.valid
    return groups
