"""`creditlake replay`: re-process dead-letter rows (rejected_records, stage = validate) of
loaded files through the current mapping overrides and rules.

A rejected row's raw_row holds its landed fields and, under "metadata", the source columns
that were not mapped; an override added since (`columns: {Kundennr: user_id}`) moves such a
column into its field. Rows that now pass are deduplicated and loaded like any file's rows
(under the file's ingest_key); rows that still fail stay rejected with their new reasons. The
replayed rejects are deleted, so the counts move from rejected to loaded/duplicates exactly
once however often replay runs. Parser rejects (stage = read) keep their raw line, which no
rule can re-read: they are not replayed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from creditlake.clickhouse.base import Engine
from creditlake.clickhouse.ddl_cluster import delete_target
from creditlake.ingest.accounting import insert_rejects, record
from creditlake.ingest.hashes import sync_record_hashes
from creditlake.ingest.load import insert_new_records, loaded_count
from creditlake.ingest.manifest import (
    LOADED_FIELDS,
    Status,
    create_stage_table,
    load_manifest,
)
from creditlake.ingest.normalize.polars import rejected_rows
from creditlake.ingest.overrides import SourceOverrides, SourceRule
from creditlake.rules.polars import clean
from creditlake.rules.validation import validate
from creditlake.schema import SOURCE_FIELDS

STAGE = "validate"


@dataclass
class ReplayResult:
    partition_key: str
    source_file: str
    replayed: int = 0      # dead-letter rows re-processed
    loaded: int = 0        # of them now in records
    duplicates: int = 0    # of them valid but already known
    still_rejected: int = 0
    skipped: str = ""      # why the file was not replayed

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def replayable_keys(engine: Engine, since: datetime | None = None) -> list[str]:
    """Partitions with dead-letter rows of the validate stage (rejected at/after `since`)."""
    where, params = _where(None, since)
    rows = engine.query_rows(f"SELECT DISTINCT partition_key FROM "
                             f"{engine.database}.rejected_records WHERE {where} "
                             "ORDER BY partition_key", params)
    return [r[0] for r in rows]


def _where(key: str | None, since: datetime | None) -> tuple[str, dict[str, object]]:
    where, params = f"stage = '{STAGE}'", {}
    if key is not None:
        where += " AND partition_key = {k:String}"
        params["k"] = key
    if since is not None:
        where += " AND rejected_at >= toDateTime64({since:String}, 3, 'UTC')"
        params["since"] = _ch_time(since)
    return where, params


def _ch_time(t: datetime) -> str:
    """A UTC time as ClickHouse's DateTime64(3) text (naive times are taken as UTC)."""
    t = t.astimezone(UTC) if t.tzinfo else t
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def remap(raw: pl.Series, rule: SourceRule) -> pl.DataFrame:
    """raw_row JSON -> landed columns (source fields + metadata), with the rule's column
    overrides applied to the unmapped source columns kept in metadata."""
    meta = raw.str.json_path_match("$.metadata").fill_null("{}")
    cols = {f: raw.str.json_path_match(f"$.{f}") for f in SOURCE_FIELDS}
    for source_col, target in rule.columns.items():
        if target in cols:
            moved = meta.str.json_path_match(f"$[{_json_path_key(source_col)}]")
            cols[target] = cols[target].fill_null(moved)
    return pl.DataFrame({**cols, "metadata": meta})


def _json_path_key(name: str) -> str:
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def replay_file(engine: Engine, home: Path, key: str, *, overrides: SourceOverrides | None = None,
                since: datetime | None = None) -> ReplayResult:
    """Replay one partition's dead-letter rows (see the module docstring)."""
    try:
        m = load_manifest(home, key)
    except FileNotFoundError:
        return ReplayResult(key, "", skipped="no manifest in this home")
    out = ReplayResult(key, m.source_file)
    if m.status != Status.LOADED:
        out.skipped = (f"status {m.status}: only loaded files are replayed"
                       + (" (`creditlake release` it first)" if m.status == Status.BLOCKED
                          else ""))
        return out
    where, params = _where(key, since)
    db = engine.database
    rows = engine.query_arrow(f"SELECT source_file, source_row, raw_row, rejected_at "
                              f"FROM {db}.rejected_records WHERE {where} "
                              "ORDER BY source_file, source_row", params)
    if rows.num_rows == 0:
        return out
    snapshot = max(rows.column("rejected_at").to_pylist())
    rule = (overrides or SourceOverrides()).for_source(m.source_file)
    landed = pl.concat([pl.from_arrow(rows.select(["source_file", "source_row"])).with_columns(
        pl.col("source_row").cast(pl.UInt64)),
        remap(pl.from_arrow(rows.column("raw_row")), rule)], how="horizontal")
    # one group per source (source_row restarts per archive member / sheet / table)
    groups = [(sub, validate(clean(sub, default_country=rule.default_country,
                                   date_format=rule.date_format)))
              for sub in landed.partition_by("source_file", maintain_order=True)]
    valid = pl.concat([r.valid.select(LOADED_FIELDS) for _, r in groups])
    out.replayed, out.still_rejected = rows.num_rows, rows.num_rows - valid.height
    before = loaded_count(engine, key)
    if valid.height:
        table = create_stage_table(engine, f"{key}#replay")
        try:
            valid = valid.with_row_index("seq").with_columns(pl.col("seq").cast(pl.UInt64))
            engine.insert_arrow(table, valid.to_arrow())
            sync_record_hashes(engine)  # a stale hash would drop a replayed row
            insert_new_records(engine, table, key, valid.height)
        finally:
            engine.command(f"DROP TABLE IF EXISTS {table}")
    out.loaded = loaded_count(engine, key) - before
    out.duplicates = valid.height - out.loaded
    # still failing: new reasons first, then the replayed rows go (new ones are newer)
    for sub, r in groups:
        if r.rejected.height:
            insert_rejects(engine, m, STAGE, rejected_rows(sub, r.rejected))
    engine.command(f"DELETE FROM {delete_target(engine, 'rejected_records')} WHERE {where} "
                   "AND rejected_at <= toDateTime64({snap:String}, 3, 'UTC')",
                   {**params, "snap": _ch_time(snapshot)})
    m.validation_rejected -= valid.height
    m.valid += valid.height
    m.loaded = before + out.loaded
    m.duplicates = m.valid - m.loaded
    note = (f"replayed {out.replayed:,} rejected rows at "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {out.loaded:,} loaded, "
            f"{out.duplicates:,} duplicates, {out.still_rejected:,} still rejected")
    m.warnings.append(note)
    record(engine, home, m)
    return out


def replay(engine: Engine, home: Path, keys: list[str] | None = None, *,
           since: datetime | None = None, overrides: SourceOverrides | None = None
           ) -> list[ReplayResult]:
    """Replay the given partitions, or every partition with dead-letter rows (since a time)."""
    keys = keys if keys is not None else replayable_keys(engine, since)
    return [replay_file(engine, home, k, overrides=overrides, since=since) for k in keys]
