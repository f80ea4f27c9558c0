"""Landing sources beyond the local directory (S3)."""
