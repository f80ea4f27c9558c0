"""Dagster assets (app layer), one module per stage: landing (one asset per source format),
normalize (Pandera-validated contacts), dedup (the ClickHouse `records` table), entities;
the landing sensors. Asset bodies resolve the partition, call a creditlake stage and return
its counts as metadata.

May import: the creditlake library and resources. Not api or cli."""
