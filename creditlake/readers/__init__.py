"""Format readers. Importing this package registers every reader in the registry."""

from creditlake.readers import (  # noqa: F401  (registration)
    archive,
    csv,
    excel,
    jsonl,
    parquet,
    sql_dump,
    xml,
)
from creditlake.readers.base import (
    SOURCE_ROW,
    Reader,
    ReaderError,
    ReaderOptions,
    ReaderRejects,
    formats,
    get_reader,
    register,
    subsource_of,
    tag_subsource,
)
from creditlake.readers.detect import UNRECOGNIZED, detect, detect_format

__all__ = [
    "SOURCE_ROW", "UNRECOGNIZED", "Reader", "ReaderError", "ReaderOptions", "ReaderRejects",
    "detect", "detect_format", "formats",
    "get_reader", "register", "subsource_of", "tag_subsource",
]
