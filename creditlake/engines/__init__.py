"""Processing engines: the same rules compiled to Polars (embedded) or Spark (scale-out)."""
