"""Entity resolution: link records that are the same person (Splink), cluster them into
entities and keep one golden record per entity. See resolve.py for the flow; nothing here is
imported eagerly (Splink/DuckDB load only when a run starts)."""
