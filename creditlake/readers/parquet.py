"""Parquet reader: row-group batches, every column cast to text (nested -> JSON)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from creditlake.readers.arrow_util import as_landing_batch
from creditlake.readers.base import ReaderError, ReaderOptions, register


@register("parquet")
def read(path: Path, opts: ReaderOptions) -> Iterator[pa.RecordBatch]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ReaderError(f"not a readable Parquet file: {exc}") from exc
    next_row = 1
    try:
        for batch in pf.iter_batches(batch_size=opts.batch_rows):
            yield as_landing_batch(batch, next_row)
            next_row += batch.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise ReaderError(f"Parquet file is corrupt after row {next_row - 1}: {exc}") from exc
