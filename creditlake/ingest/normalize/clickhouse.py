"""The normalize stage inside the engine: the rules compiled to ClickHouse SQL
(rules/clickhouse.py) clean, validate and hash the landed rows where they are stored, so the
rows make one trip instead of Arrow -> Polars -> Arrow -> engine per batch:

    landed.arrow --(1: one INSERT ... SELECT FROM file(), in file order: seq)--> land_<key>
      --(2: one INSERT ... SELECT of the compiled rules into a Null table; two materialized
          views split it)--> stage_<key> (valid rows)  +  rejected_records (fatal rows)
      --(3: Pandera reads the stage table back in chunks: the validation gate)

Step 1 runs single-threaded so `seq` is the landed order (the load keeps the first row of a
hash by seq, like the Polars path); step 2 uses every core. A server engine cannot read this
host's files, so there step 1 streams the Arrow batches instead.

The gate: ContactNormalized (rules/validation.py) validates what the SQL produced, chunk by
chunk, and must agree with it: no row Pandera rejects, and per row the same findings and
score. A disagreement is a compiler bug, and the partition fails loudly rather than loading
rows the SQL judged differently from the model. (Pandera re-checks every valid row: bounded
memory, not bounded work; GATE_CHUNK_ROWS rows at a time.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc

from creditlake.clickhouse.base import Engine
from creditlake.ingest.manifest import (
    LOADED_FIELDS,
    STAGE_COLUMNS,
    Manifest,
    Progress,
    _digest,
    create_stage_table,
    landed_path,
    open_landed,
)
from creditlake.ingest.normalize.common import begin, finish
from creditlake.ingest.overrides import SourceOverrides
from creditlake.rules import clickhouse as rules_sql
from creditlake.rules.validation import validate
from creditlake.rules.vocab import WARNINGS
from creditlake.schema import SOURCE_FIELDS

GATE_CHUNK_ROWS = 1_000_000
LAND_COLUMNS = ("seq UInt64, source_file String, source_row UInt64, "
                + ", ".join(f"{f} Nullable(String)" for f in SOURCE_FIELDS)
                + ", metadata String")
# What normalize_select returns (declared: deriving it from the SELECT costs an analysis).
NORMALIZED_COLUMNS = (f"{STAGE_COLUMNS}, record_hash String, _fatal UInt8, raw_row String")
# The compiled SELECT is ~120 KB of SQL (vocabularies and numbering plans as literals).
SQL_SETTINGS = {"max_query_size": 4 << 20, **rules_sql.RAW_ROW_SETTINGS}


class GateMismatch(RuntimeError):
    """Pandera and the compiled SQL judged rows differently (a compiler bug)."""


def _names(engine: Engine, key: str) -> dict[str, str]:
    d, db = _digest(key), engine.database
    return {"land": f"{db}.land_{d}", "null": f"{db}.norm_{d}",
            "mv_valid": f"{db}.mv_valid_{d}", "mv_rejects": f"{db}.mv_rejects_{d}"}


def drop_work_tables(engine: Engine, key: str) -> None:
    for name in _names(engine, key).values():
        engine.command(f"DROP TABLE IF EXISTS {name}")


def embedded(engine: Engine) -> bool:
    """chDB (directly or through the sharing owner) reads this host's files; a server does
    not. Only ClickHouseEngine carries a URL; the sharing engines are embedded-only."""
    return not str(getattr(engine, "url", "chdb:")).startswith(("http:", "https:"))


def normalize(engine: Engine, home: Path, key: str, *, overrides: SourceOverrides | None = None,
              progress: Progress | None = None) -> Manifest:
    """Clean + validate + hash in the engine into the partition's stage table."""
    b = begin(engine, home, key, overrides)
    m = b.manifest
    if b.done:
        return m
    select = rules_sql.normalize_select(_names(engine, key)["land"],
                                        default_country=b.rule.default_country,
                                        date_format=b.rule.date_format)
    names = _names(engine, key)
    drop_work_tables(engine, key)
    try:
        landed = _land_table(engine, landed_path(home, key), names["land"])
        table = create_stage_table(engine, key)
        _split(engine, m, select, names, table)
        _account(engine, m, table)
        if m.valid + m.validation_rejected != landed:
            raise GateMismatch(f"{landed} landed rows, {m.valid} valid + "
                               f"{m.validation_rejected} rejected")
        gate(engine, table, landed)
    finally:
        drop_work_tables(engine, key)
    if progress:
        progress(landed)
    return finish(engine, home, m, b.t0)


def _land_table(engine: Engine, path: Path, table: str) -> int:
    """The landed Arrow file as a table with `seq` = its row order. Returns the row count."""
    engine.command(f"CREATE TABLE {table} ({LAND_COLUMNS}) ENGINE = MergeTree ORDER BY tuple()")
    if embedded(engine):
        # one thread: blocks are numbered in file order (rowNumberInAllBlocks is only
        # deterministic on a single stream)
        engine.command(f"INSERT INTO {table} SELECT rowNumberInAllBlocks(), * "
                       f"FROM file({rules_sql.quote(str(path))}, 'ArrowStream')",
                       settings={"max_threads": 1})
    else:
        n = 0
        with open_landed(path) as source:
            for batch in ipc.open_stream(source):
                if batch.num_rows:
                    seq = pa.array(np.arange(n, n + batch.num_rows, dtype=np.uint64))
                    engine.insert_arrow(table, pa.Table.from_batches([batch]).add_column(
                        0, "seq", seq))
                    n += batch.num_rows
    return int(engine.query_rows(f"SELECT count() FROM {table}")[0][0])


def _split(engine: Engine, m: Manifest, select: str, names: dict[str, str],
           stage: str) -> None:
    """One pass of the compiled rules; materialized views send valid rows to the stage
    table and fatal rows (with their raw row and reasons) to rejected_records."""
    db = engine.database
    engine.command(f"CREATE TABLE {names['null']} ({NORMALIZED_COLUMNS}) ENGINE = Null")
    cols = ", ".join(("seq", *LOADED_FIELDS, "record_hash"))
    engine.command(f"CREATE MATERIALIZED VIEW {names['mv_valid']} TO {stage} "
                   f"AS SELECT {cols} FROM {names['null']} WHERE NOT _fatal")
    engine.command(
        f"CREATE MATERIALIZED VIEW {names['mv_rejects']} TO {db}.rejected_records AS "
        f"SELECT source_file, {rules_sql.quote(m.key)} AS partition_key, source_row, "
        "'validate' AS stage, raw_row, validation_errors AS reasons, "
        f"now64(3, 'UTC') AS rejected_at FROM {names['null']} WHERE _fatal")
    engine.command(f"INSERT INTO {names['null']} {select}", settings=SQL_SETTINGS)


def _account(engine: Engine, m: Manifest, stage: str) -> None:
    """valid / rejected counts and the quality figures from the engine."""
    rows = engine.query_rows(
        f"SELECT least(9, greatest(0, toInt32(floor(data_quality_score * 10)))) AS b, "
        f"count(), sum(data_quality_score) FROM {stage} GROUP BY b")
    score_sum = 0.0
    for b, n, s in rows:
        m.quality_histogram[int(b)] += int(n)
        m.valid += int(n)
        score_sum += float(s)
    m.quality_mean = score_sum / m.valid if m.valid else 0.0
    m.validation_rejected = int(engine.query_rows(
        f"SELECT count() FROM {engine.database}.rejected_records "
        "WHERE partition_key = {k:String} AND stage = 'validate'", {"k": m.key})[0][0])


GATE_COLUMNS = ("source_row", "user_id", "email", "name", "phone", "address", "city",
                "country", "created_date", "status", "data_quality_score", "validation_errors")


def gate(engine: Engine, stage: str, landed: int) -> None:
    """Pandera validates the stage table's rows, GATE_CHUNK_ROWS landed rows at a time (seq
    numbers landed rows); its verdict must equal the SQL's."""
    for lo in range(0, landed, GATE_CHUNK_ROWS):
        got = pl.from_arrow(engine.query_arrow(
            f"SELECT seq, {', '.join(GATE_COLUMNS)} FROM {stage} "
            f"WHERE seq >= {lo} AND seq < {lo + GATE_CHUNK_ROWS}"))
        assert isinstance(got, pl.DataFrame)
        check_chunk(got)


def check_chunk(got: pl.DataFrame) -> None:
    """Raise GateMismatch unless Pandera finds exactly what the SQL wrote for these rows."""
    if got.height == 0:
        return
    frame = got.with_columns(pl.col("source_row").cast(pl.UInt64),
                             pl.col("created_date").cast(pl.Date),
                             pl.lit([], pl.List(pl.String)).alias(WARNINGS))
    result = validate(frame.drop("data_quality_score", "validation_errors"))
    if result.rejected.height:
        raise GateMismatch(f"Pandera rejects {result.rejected.height} rows the SQL kept, "
                           f"e.g. {result.rejected.row(0)}")
    ours = result.valid.select("seq", pl.col("data_quality_score").alias("_pscore"),
                               pl.col("validation_errors").alias("_perrs"))
    both = frame.join(ours, on="seq", how="inner")
    bad = both.filter(
        (pl.col("_pscore") != pl.col("data_quality_score"))
        | (pl.col("_perrs").list.set_difference("validation_errors").list.len() > 0)
        | (pl.col("validation_errors").list.eval(pl.element().str.contains(_CHECK_MESSAGE))
           .list.sum() != pl.col("_perrs").list.len()))
    if bad.height or both.height != got.height:
        raise GateMismatch(f"Pandera and the SQL disagree on {bad.height} rows, e.g. "
                           f"{bad.head(1).to_dicts()}")


# The column-check messages validation.validate writes ("email: email_format failed for ...")
_CHECK_MESSAGE = r"^[a-z_]+: [a-z_]+ failed for '"
