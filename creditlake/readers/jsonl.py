"""JSON Lines and JSON (array of objects, or an object holding one) readers.

Nested objects are flattened to dotted column names ("contact.email"), lists become JSON
text; every value is text. Lines that are not valid JSON objects are rejected, not dropped.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import msgspec
import polars as pl
import pyarrow as pa

from creditlake.readers.arrow_util import as_landing_batch
from creditlake.readers.base import ReaderError, ReaderOptions, ReaderRejects, register
from creditlake.readers.textio import open_binary

BLOCK_BYTES = 32 << 20
MAX_JSON_DOCUMENT = 1 << 30  # whole-document JSON is parsed in memory; use JSONL beyond this


def flatten(df: pl.DataFrame) -> pl.DataFrame:
    """Structs -> dotted columns (recursively); lists/other -> text."""
    while any(isinstance(dt, pl.Struct) for dt in df.dtypes):
        exprs = []
        for name, dt in df.schema.items():
            if isinstance(dt, pl.Struct):
                exprs += [pl.col(name).struct.field(f.name).alias(f"{name}.{f.name}")
                          for f in dt.fields]
            else:
                exprs.append(pl.col(name))
        df = df.select(exprs)
    out = []
    for name, dt in df.schema.items():
        if isinstance(dt, (pl.List, pl.Array)):
            encoded = (pl.struct(pl.col(name).alias("v")).struct.json_encode()
                       .str.slice(5).str.head(-1))
            out.append(pl.when(pl.col(name).is_null()).then(None).otherwise(encoded)
                       .alias(name))
        elif dt == pl.String:
            out.append(pl.col(name))
        elif dt == pl.Null:
            out.append(pl.lit(None, pl.String).alias(name))
        else:
            out.append(pl.col(name).cast(pl.String))
    return df.select(out)


def _frame_from_lines(lines: list[bytes], first_row: int, rejects: ReaderRejects
                      ) -> pl.DataFrame:
    """Error path only: parse line by line to separate bad lines from good ones."""
    good, rows = [], []
    for i, line in enumerate(lines):
        try:
            obj = msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            rejects.add(first_row + i, line.decode("utf-8", "replace"), f"invalid JSON: {exc}")
            continue
        if not isinstance(obj, dict):
            rejects.add(first_row + i, line.decode("utf-8", "replace"),
                        "JSON value is not an object")
            continue
        good.append(obj)
        rows.append(first_row + i)
    df = pl.from_dicts(good, infer_schema_length=None) if good else pl.DataFrame()
    return df.with_columns(pl.Series("__row", rows, pl.UInt64))


def _emit(df: pl.DataFrame, first_row: int) -> pa.RecordBatch:
    if "__row" in df.columns:
        rows = df.get_column("__row")
        df = df.drop("__row")
        batch = as_landing_batch(flatten(df).to_arrow(), first_row)
        return batch.set_column(batch.num_columns - 1, "source_row", rows.to_arrow())
    return as_landing_batch(flatten(df).to_arrow(), first_row)


@register("jsonl")
def read_jsonl(path: Path, opts: ReaderOptions, rejects: ReaderRejects | None = None
               ) -> Iterator[pa.RecordBatch]:
    rejects = rejects if rejects is not None else ReaderRejects()
    next_row = 1
    tail = b""
    truncated: Exception | None = None
    with open_binary(path) as f:
        while True:
            try:
                chunk = f.read(BLOCK_BYTES)
            except (EOFError, OSError) as exc:
                chunk, truncated = b"", exc
            data = tail + chunk
            if chunk:
                cut = data.rfind(b"\n")
                if cut < 0:
                    tail = data
                    continue
                block, tail = data[: cut + 1], data[cut + 1:]
            else:
                block, tail = data, b""
            # blank lines are not records; keep numbering by non-blank line
            lines = [ln for ln in block.split(b"\n") if ln.strip()]
            if lines:
                try:
                    df = pl.read_ndjson(io.BytesIO(b"\n".join(lines)), infer_schema_length=None)
                    if df.height != len(lines):
                        raise ValueError("row count mismatch")
                except Exception:  # noqa: BLE001 - fall back to per-line parsing to find bad lines
                    df = _frame_from_lines(lines, next_row, rejects)
                for start in range(0, df.height, opts.batch_rows):
                    part = df.slice(start, opts.batch_rows)
                    if part.width:
                        yield _emit(part, next_row + start)
                next_row += len(lines)
            if not chunk:
                break
    if truncated is not None:
        raise ReaderError(f"input ends unexpectedly after record {next_row - 1} "
                          f"(truncated or corrupt compressed file): {truncated}")


def _records_of(doc: object) -> list:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        lists = [v for v in doc.values() if isinstance(v, list)]
        for key in ("data", "records", "rows", "items", "results", "users", "contacts",
                    "people", "customers"):
            if isinstance(doc.get(key), list):
                return doc[key]
        if len(lists) == 1:
            return lists[0]
        return [doc]
    raise ReaderError("JSON document holds no records (expected an array of objects)")


@register("json")
def read_json(path: Path, opts: ReaderOptions, rejects: ReaderRejects | None = None
              ) -> Iterator[pa.RecordBatch]:
    rejects = rejects if rejects is not None else ReaderRejects()
    if path.stat().st_size > MAX_JSON_DOCUMENT:
        raise ReaderError("JSON document over 1 GiB: export it as JSON Lines to stream it")
    try:
        with open_binary(path) as f:
            raw = f.read()
    except (EOFError, OSError) as exc:
        raise ReaderError(f"compressed JSON is truncated or corrupt: {exc}") from exc
    try:
        doc = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ReaderError(f"invalid JSON document: {exc}") from exc
    records = _records_of(doc)
    good, rows = [], []
    for i, rec in enumerate(records, start=1):
        if isinstance(rec, dict):
            good.append(rec)
            rows.append(i)
        else:
            rejects.add(i, msgspec.json.encode(rec).decode(), "array element is not an object")
    for start in range(0, len(good), opts.batch_rows):
        part = good[start: start + opts.batch_rows]
        df = pl.from_dicts(part, infer_schema_length=None).with_columns(
            pl.Series("__row", rows[start: start + opts.batch_rows], pl.UInt64))
        yield _emit(df, rows[start])
