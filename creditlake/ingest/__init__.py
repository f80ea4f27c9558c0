"""Ingestion: the stages every format shares (land -> normalize -> dedup/load)."""
