"""The hand-off between stages: a partition's Manifest (JSON next to its staged data), its
typed Status, and where its staged data lives (Arrow file on disk, ClickHouse stage table)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

import pyarrow as pa

from creditlake.clickhouse.base import Engine
from creditlake.clickhouse.ddl import HASH_BUCKET
from creditlake.readers.detect import UNRECOGNIZED
from creditlake.rules.identity import clickhouse_hash_sql

__all__ = ["UNRECOGNIZED", "Manifest", "Progress", "Status"]

Progress = Callable[[int], None]  # called with the number of rows just processed


class Status(StrEnum):
    """A partition's state. StrEnum: stored and compared as its plain string value."""

    LANDED = "landed"            # read and mapped, not yet normalized
    QUARANTINED = "quarantined"  # unrecognized or unreadable: nothing to normalize
    NORMALIZED = "normalized"    # valid rows in the stage table, not yet loaded
    BLOCKED = "blocked"          # a blocking quality check held the valid rows back
    LOADED = "loaded"
    FAILED = "failed"


FINISHED = (Status.QUARANTINED, Status.FAILED)  # nothing left for normalize/load to do


@dataclass
class Manifest:
    """What a partition's stages know about it; saved as JSON next to its staged data."""

    key: str
    source_file: str
    path: str
    format: str = ""
    status: Status = Status.LANDED
    message: str = ""
    rows_read: int = 0
    read_rejected: int = 0
    valid: int = 0
    validation_rejected: int = 0
    loaded: int = 0
    duplicates: int = 0
    quality_mean: float = 0.0
    quality_histogram: list[int] = field(default_factory=lambda: [0] * 10)
    mappings: dict[str, dict] = field(default_factory=dict)  # source -> mapping
    warnings: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    seconds: dict[str, float] = field(default_factory=dict)
    # The batch stage table holding this file's valid rows when a batch of small files was
    # normalized together (rows keyed by partition_key); "" = the file's own stage table.
    stage: str = ""

    def __post_init__(self) -> None:
        self.status = Status(self.status)

    @property
    def rejected(self) -> int:
        return self.read_rejected + self.validation_rejected

    @property
    def held(self) -> int:
        """Rows in staging that are neither loaded, duplicates nor rejected: the valid rows of
        a normalized or blocked file, the landed rows of one not normalized (yet)."""
        if self.status in (Status.NORMALIZED, Status.BLOCKED):
            return self.valid
        if self.status in (Status.LANDED, Status.FAILED):
            return max(0, self.rows_read - self.rejected - self.loaded - self.duplicates)
        return 0

    @property
    def failure_rate(self) -> float:
        return self.rejected / self.rows_read if self.rows_read else 0.0


def _digest(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:20]


def staging_dir(home: Path, key: str) -> Path:
    return home / "staging" / _digest(key)


def landed_path(home: Path, key: str) -> Path:
    """The land stage's output: mapped rows as an Arrow IPC stream."""
    return staging_dir(home, key) / "landed.arrow"


def open_landed(path: Path) -> pa.OSFile:
    """A landed stream opened for reading. Read, not memory-mapped: the touched pages of a
    mapped file count as the process's resident memory (3 GB by the end of normalizing a
    10M-row file); read batch by batch, memory stays that of the batches in flight."""
    return pa.OSFile(str(path), "rb")


def save_manifest(home: Path, m: Manifest) -> None:
    d = staging_dir(home, m.key)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / "manifest.json.tmp"
    tmp.write_text(json.dumps(asdict(m)))
    tmp.replace(d / "manifest.json")


def load_manifest(home: Path, key: str) -> Manifest:
    f = staging_dir(home, key) / "manifest.json"
    if not f.exists():
        raise FileNotFoundError(f"partition {key!r} has not been landed yet")
    return Manifest(**json.loads(f.read_text()))


# ---------------------------------------------------------------- the stage table

STAGE_COLUMNS = (
    "seq UInt64, source_file String, source_row UInt64, user_id Nullable(String), "
    "email Nullable(String), "
    "name Nullable(String), phone Nullable(String), address Nullable(String), "
    "city Nullable(String), country Nullable(String), created_date Nullable(Date), "
    "status String, metadata String, data_quality_score Float32, "
    "validation_errors Array(String)"
)
# What normalize writes into the stage table (seq and record_hash aside).
LOADED_FIELDS = ("source_file", "source_row", "user_id", "email", "name", "phone", "address",
                 "city", "country", "created_date", "status", "metadata",
                 "data_quality_score", "validation_errors")


# Stage tables live for one load, which reads them once in hash-bucket ranges: merging their
# parts would only take the cores from normalize and load (10M rows: normalize 38 s instead
# of 55-65 s, load chunks 3.7-6.0 s instead of 4.5-7.1 s); a big file's load writes its
# chunks under them too (ingest/load.py). The part limits are lifted for a
# file of billions of rows; a 700M-row file makes ~3,500 parts of 200K rows.
MERGE_FREE_SETTINGS = ("max_bytes_to_merge_at_max_space_in_pool = 1, "
                  "parts_to_delay_insert = 1000000, parts_to_throw_insert = 1000000")


def stage_table(engine: Engine, key: str) -> str:
    return f"{engine.database}.stage_{_digest(key)}"


def batch_stage_table(engine: Engine, keys: Sequence[str]) -> str:
    """The stage table a batch of small files shares (one CREATE and one insert per chunk of
    files instead of both per file: ~15 ms a file in chDB)."""
    return f"{engine.database}.stage_batch_{_digest(chr(10).join(keys))}"


def create_batch_stage_table(engine: Engine, table: str) -> None:
    """A stage table with partition_key first: without it, its columns are a stage table's."""
    engine.command(f"DROP TABLE IF EXISTS {table}")
    engine.command(
        f"CREATE TABLE {table} (partition_key String, {STAGE_COLUMNS}, record_hash String "
        f"DEFAULT {clickhouse_hash_sql()}) ENGINE = MergeTree ORDER BY (partition_key, seq) "
        f"SETTINGS {MERGE_FREE_SETTINGS}")


def staged_in(engine: Engine, m: Manifest) -> str:
    """The table holding the file's stage rows: its batch's, or its own."""
    return m.stage or stage_table(engine, m.key)


def stage_rows(engine: Engine, m: Manifest) -> str:
    """The file's stage rows as a FROM source with its own stage table's columns, in order."""
    if not m.stage:
        return stage_table(engine, m.key)
    key = m.key.replace("\\", "\\\\").replace("'", "\\'")
    return f"(SELECT * EXCEPT partition_key FROM {m.stage} WHERE partition_key = '{key}')"


def own_stage(engine: Engine, m: Manifest) -> None:
    """Copy a batch-staged file's rows into its own stage table (a held file keeps them there
    after its batch's table is dropped)."""
    if m.stage:
        table = create_stage_table(engine, m.key)
        engine.command(f"INSERT INTO {table} SELECT * FROM {stage_rows(engine, m)}")
        m.stage = ""


# A stage table's order: the load's chunks are ranges of the hash bucket (ingest/load.py),
# so each reads only its granules; within a bucket, rows keep their file order. A minmax
# index on seq keeps reads of seq ranges (the SQL backend's Pandera gate) to the parts of
# their insert blocks.
STAGE_ORDER_BY = f"({HASH_BUCKET}, seq)"
STAGE_INDEXES = "INDEX seq_range seq TYPE minmax GRANULARITY 1"
# Granules of 1,024 rows, not 8,192: a stage table is a few hundred parts of ~70K rows, and a
# load chunk wants a tenth of each part's hash buckets. With 8,192-row granules it read a
# whole granule for its few rows in every part (10M-row CSV: load 21.4 s, 19.7 s with these).
STAGE_SETTINGS = "index_granularity = 1024"


def create_stage_table(engine: Engine, key: str, *, order_by: str = STAGE_ORDER_BY,
                       table_settings: str = "", drop: bool = True) -> str:
    """(Re)create the partition's stage table; record_hash is computed by ClickHouse on insert.
    table_settings: more MergeTree settings. drop=False: the caller dropped it already (a
    batch drops its files' tables at once)."""
    table = stage_table(engine, key)
    if drop:
        engine.command(f"DROP TABLE IF EXISTS {table}")
    settings = ", ".join(filter(None, (MERGE_FREE_SETTINGS, STAGE_SETTINGS, table_settings)))
    engine.command(
        f"CREATE TABLE {table} ({STAGE_COLUMNS}, record_hash String "
        f"DEFAULT {clickhouse_hash_sql()}, {STAGE_INDEXES}) ENGINE = MergeTree "
        f"ORDER BY {order_by} SETTINGS {settings}")
    return table
