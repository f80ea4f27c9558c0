"""Format readers. Importing this package registers every reader in the registry."""

from creditlake.readers.base import (
    SOURCE_ROW,
    Reader,
    ReaderError,
    ReaderOptions,
    formats,
    get_reader,
    register,
    subsource_of,
    tag_subsource,
)

__all__ = [
    "SOURCE_ROW", "Reader", "ReaderError", "ReaderOptions", "formats", "get_reader",
    "register", "subsource_of", "tag_subsource",
]
