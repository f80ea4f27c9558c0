"""Dagster assets, one package per stage: landing (one asset per source format),
normalize (Pandera-validated contacts), dedup (the ClickHouse `records` table)."""
