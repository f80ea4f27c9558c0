"""The dedup key: record_hash = lower-hex MD5 of the normalized identity fields.

One definition, rendered for ClickHouse SQL here and for Spark in engines/spark.py, so
every path computes the same hash for the same person.
"""

from __future__ import annotations

from creditlake.schema import IDENTITY_FIELDS

SEPARATOR = "|"
# Per-field transform applied before hashing (values are already cleaned).
LOWERCASED = frozenset({"name", "email"})


def clickhouse_hash_sql(prefix: str = "") -> str:
    """ClickHouse expression over nullable columns (null -> '')."""
    parts = []
    for f in IDENTITY_FIELDS:
        col = f"ifNull({prefix}{f}, '')"
        # lowerUTF8: ClickHouse's lower() is ASCII-only ("ZOË" would not equal "zoë")
        parts.append(f"lowerUTF8({col})" if f in LOWERCASED else col)
    joined = f", '{SEPARATOR}', ".join(parts)
    return f"lower(hex(MD5(concat({joined}))))"


def python_hash(values: dict[str, str | None]) -> str:
    """Reference implementation (tests and tooling only; never per row in a hot path)."""
    import hashlib

    parts = [(values.get(f) or "") for f in IDENTITY_FIELDS]
    parts = [p.lower() if f in LOWERCASED else p for f, p in zip(IDENTITY_FIELDS, parts,
                                                                 strict=True)]
    return hashlib.md5(SEPARATOR.join(parts).encode()).hexdigest()
