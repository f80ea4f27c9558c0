"""Turn any Arrow table/batch into the reader contract: string columns + source_row."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from creditlake.readers._batches import unique_names
from creditlake.readers.base import SOURCE_ROW


def _to_string(col: pa.ChunkedArray | pa.Array) -> pa.Array | pa.ChunkedArray:
    t = col.type
    if pa.types.is_string(t):
        return col
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return col.cast(pa.string())
    if pa.types.is_nested(t) or pa.types.is_dictionary(t) and pa.types.is_nested(t.value_type):
        import polars as pl  # nested -> JSON text, vectorized

        s = pl.from_arrow(col)
        if isinstance(s, pl.DataFrame):  # pragma: no cover - defensive
            s = s.to_series()
        return (s.to_frame("v").select(pl.struct("v").struct.json_encode()
                                       .str.slice(5).str.head(-1)).to_series().to_arrow())
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return pc.cast(col, pa.string(), safe=False)
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return pc.strftime(col, format="%Y-%m-%d" if pa.types.is_date(t) else "%Y-%m-%dT%H:%M:%S")
    return pc.cast(col, pa.string())


def as_landing_batch(table: pa.Table | pa.RecordBatch, first_row: int) -> pa.RecordBatch:
    """Cast every column to string and append `source_row` = first_row, first_row+1, ..."""
    n = table.num_rows
    names = unique_names(table.column_names)
    arrays = [_to_string(table.column(i)) for i in range(table.num_columns)]
    arrays = [a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in arrays]
    rows = pa.array(range(first_row, first_row + n), pa.uint64())
    return pa.RecordBatch.from_arrays([*arrays, rows], names=[*names, SOURCE_ROW])


def release_arrow_memory() -> None:
    """Hand the memory pyarrow's pool keeps cached back to the system at the end of a stage:
    the next stage allocates through Polars and chDB, which cannot reuse it (after landing a
    10M-row CSV: 570 MB resident, 369 MB after this)."""
    pa.default_memory_pool().release_unused()
