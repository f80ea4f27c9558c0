"""The master schema: one definition that the ClickHouse DDL, Arrow batches and the API share."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    clickhouse: str
    arrow: pa.DataType
    description: str
    queryable: bool = True  # exposed to API filters/projection


RECORD_COLUMNS: tuple[Column, ...] = (
    Column("id", "UUID", pa.string(), "Row id (UUIDv4, assigned at load)"),
    Column("source_file", "LowCardinality(String)", pa.string(), "File the row came from"),
    Column("record_hash", "String", pa.string(),
           "MD5 (hex) of the normalized identity fields: the dedup key"),
    Column("ingested_at", "DateTime64(3, 'UTC')", pa.timestamp("ms", "UTC"), "Load time"),
    Column("user_id", "String", pa.string(), "Source system's user id"),
    Column("email", "String", pa.string(), "Lower-cased, trimmed e-mail"),
    Column("name", "String", pa.string(), "Full name, whitespace collapsed"),
    Column("phone", "String", pa.string(), "E.164 where the country is known, else digits"),
    Column("address", "String", pa.string(), "Street address, parts joined"),
    Column("city", "String", pa.string(), "City"),
    Column("country", "LowCardinality(String)", pa.string(), "ISO 3166-1 alpha-2 code"),
    Column("created_date", "Nullable(Date)", pa.date32(), "Record creation date in the source"),
    Column("status", "LowCardinality(String)", pa.string(),
           "active | inactive | pending | suspended | deleted | unknown"),
    Column("metadata", "String", pa.string(), "JSON object of unmapped source columns"),
    Column("data_quality_score", "Float32", pa.float32(), "0..1, share of checks passed"),
    Column("validation_errors", "Array(String)", pa.list_(pa.string()),
           "Non-fatal findings for this row"),
)

RECORD_FIELDS: tuple[str, ...] = tuple(c.name for c in RECORD_COLUMNS)
COLUMN_BY_NAME = {c.name: c for c in RECORD_COLUMNS}

# Every landed row carries its 1-based row number in the source (file line, sheet row...).
SOURCE_ROW = "source_row"
# Fields a source can provide (everything but what the pipeline computes).
SOURCE_FIELDS: tuple[str, ...] = (
    "user_id", "email", "name", "phone", "address", "city", "country", "created_date", "status",
)
# Fields whose normalized values make up the identity (record_hash). A record needs >= 1 of
# email / phone / user_id to be usable; name refines identity but cannot stand alone.
IDENTITY_FIELDS: tuple[str, ...] = ("email", "phone", "user_id", "name")
REQUIRED_ANY_OF: tuple[str, ...] = ("email", "phone", "user_id")
STATUSES: tuple[str, ...] = ("active", "inactive", "pending", "suspended", "deleted", "unknown")
