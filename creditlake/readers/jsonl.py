"""JSON Lines and JSON (array of objects, or an object holding one) readers.

Nested objects are flattened to dotted column names ("contact.email"), lists become JSON
text; every value is text. Lines that are not valid JSON objects are rejected, not dropped.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import msgspec
import polars as pl
import pyarrow as pa

from creditlake.config import ReadLimits
from creditlake.readers._batches import notice_batch, unique_names
from creditlake.readers.arrow_util import as_landing_batch
from creditlake.readers.base import SOURCE_ROW, ReaderError, ReaderOptions, ReaderRejects, register
from creditlake.readers.limits import array_elements, flag_lines, naive_max_depth
from creditlake.readers.limits import problem as limits_problem
from creditlake.readers.textio import (
    CP1252_REPAIR,
    TruncationGuard,
    Utf8Stream,
    open_binary,
    read_head,
    replaced_notice,
    sniff_encoding,
)
from creditlake.rules.mapping import infer_mapping

BLOCK_BYTES = 32 << 20


def flatten(df: pl.DataFrame) -> pl.DataFrame:
    """Structs -> dotted columns (recursively); lists/other -> text. A dotted name that
    already exists ({"a.b": 1, "a": {"b": 2}}) gets a _2 suffix instead of colliding."""
    while any(isinstance(dt, pl.Struct) for dt in df.dtypes):
        named: list[tuple[pl.Expr, str]] = []
        for name, dt in df.schema.items():
            if isinstance(dt, pl.Struct):
                named += [(pl.col(name).struct.field(f.name), f"{name}.{f.name}")
                          for f in dt.fields]
            else:
                named.append((pl.col(name), name))
        names = unique_names([n for _, n in named])
        df = df.select([e.alias(n) for (e, _), n in zip(named, names, strict=True)])
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


def _lenient(text: bytes) -> object:
    """What JSON writers emit but msgspec refuses: NaN/Infinity (Python's json.dumps) and
    numbers past a double (1e999). NaN is a missing value; a number keeps its literal text.
    ValueError if it is not JSON even so, or holds what no UTF-8 text can (a lone surrogate
    escape such as "\\ud83d", which json accepts and msgspec rightly refuses)."""
    obj = json.loads(text, parse_float=str,
                     parse_constant=lambda c: None if c == "NaN" else c)
    try:
        msgspec.json.encode(obj)
    except UnicodeEncodeError as exc:
        raise ValueError(f"not UTF-8 text: {exc}") from None
    return obj


def _decode_object(text: bytes, row: int, rejects: ReaderRejects) -> dict | None:
    """One record parsed on its own (error paths only); a bad one goes to `rejects`."""
    try:
        obj = decode_lenient(text)
    except UnicodeDecodeError:  # stray Latin-1/cp1252 bytes: repaired as the CSV reader does
        return _decode_object(text.decode("utf-8", CP1252_REPAIR).encode(), row, rejects)
    except (msgspec.DecodeError, RecursionError) as exc:
        rejects.add(row, text.decode("utf-8", "replace"), f"invalid JSON: {exc}")
        return None
    if not isinstance(obj, dict):
        rejects.add(row, text.decode("utf-8", "replace"), "JSON value is not an object")
        return None
    return obj


def _frame_of(objs: list[dict]) -> pl.DataFrame:
    """Parsed objects -> a frame through the same NDJSON reader as the fast path, so a field
    whose shape varies (an object here, a string or deeper object there) becomes JSON text
    in every path; pl.from_dicts refuses such a batch outright (the whole file failed)."""
    if not objs:
        return pl.DataFrame()
    encoder = msgspec.json.Encoder()
    text = b"\n".join(encoder.encode(o) for o in objs)
    return pl.read_ndjson(io.BytesIO(text), infer_schema_length=None)


def _emit(df: pl.DataFrame, rows: list[int] | range) -> pa.RecordBatch:
    """Landing batch of `df` with its own record numbers (gaps where records were rejected)."""
    batch = as_landing_batch(flatten(df).to_arrow(), 1)
    return batch.set_column(batch.num_columns - 1, SOURCE_ROW, pa.array(rows, pa.uint64()))


def _parse_lines(lines: list[bytes], rows: list[int], rejects: ReaderRejects) -> tuple[
        pl.DataFrame, list[int]]:
    """Lines already within the limits -> a frame; on any parse problem, line by line."""
    try:
        df = pl.read_ndjson(io.BytesIO(b"\n".join(lines)), infer_schema_length=None)
        if df.height == len(lines):
            return df, rows
    except Exception:  # noqa: BLE001 - fall back to per-line parsing to find the bad lines
        pass
    good, kept = [], []
    for line, row in zip(lines, rows, strict=True):
        if (obj := _decode_object(line, row, rejects)) is not None:
            good.append(obj)
            kept.append(row)
    return _frame_of(good), kept


class _Source:
    """A JSON file opened for reading: decompressed, ending cleanly at a truncation
    (guard.error says so), and transcoded to UTF-8 from UTF-16 (by BOM or NUL pattern) or a
    UTF-8 BOM, its bytes that are not text in that encoding counted (notice)."""

    def __init__(self, path: Path, encoding: str | None) -> None:
        self.guard = TruncationGuard(open_binary(path))
        stream = io.BufferedReader(self.guard, 1 << 20)
        self.encoding = encoding or sniff_encoding(read_head(path, 4096))
        self._text = None if self.encoding == "utf-8" else Utf8Stream(stream, self.encoding)
        self.f = stream if self._text is None else io.BufferedReader(self._text, 1 << 20)

    def notice(self) -> Iterator[pa.RecordBatch]:
        """The file's warning about replaced bytes, if any (after its last batch)."""
        if self._text is not None and self._text.replaced:
            yield notice_batch(replaced_notice(self._text.replaced, self.encoding))


@register("jsonl")
def read_jsonl(path: Path, opts: ReaderOptions, rejects: ReaderRejects | None = None
               ) -> Iterator[pa.RecordBatch]:
    rejects = rejects if rejects is not None else ReaderRejects()
    limits = opts.limits
    next_row = 1
    tail = b""
    skipping = False  # inside a line already rejected as over the size limit
    src = _Source(path, opts.encoding)
    with src.f as f:
        while True:
            chunk = f.read(BLOCK_BYTES)
            if skipping and chunk:
                nl = chunk.find(b"\n")
                if nl < 0:
                    continue
                chunk, skipping = chunk[nl + 1:] or b"\n", False
            data = tail + chunk
            if chunk:
                cut = data.rfind(b"\n")
                if cut < 0:
                    if len(data) > limits.max_record_bytes:  # a runaway line: skip to its end
                        rejects.add(next_row, data[:10_000].decode("utf-8", "replace"),
                                    limits_problem(data, limits) or "record too long")
                        tail, next_row, skipping = b"", next_row + 1, True
                        continue
                    tail = data
                    continue
                block, tail = data[: cut + 1], data[cut + 1:]
            else:
                block, tail = data, b""
            # blank lines are not records; keep numbering by non-blank line
            lines = [ln for ln in block.split(b"\n") if ln.strip()]
            if lines:
                rows = range(next_row, next_row + len(lines))
                flagged = flag_lines(lines, limits)
                if flagged:
                    for i, reason in flagged.items():
                        rejects.add(rows[i], lines[i].decode("utf-8", "replace"), reason)
                    keep = [i for i in range(len(lines)) if i not in flagged]
                    df, kept = _parse_lines([lines[i] for i in keep], [rows[i] for i in keep],
                                            rejects)
                else:
                    df, kept = _parse_lines(lines, list(rows), rejects)
                for start in range(0, df.height, opts.batch_rows):
                    part = df.slice(start, opts.batch_rows)
                    if part.width:
                        yield _emit(part, kept[start: start + opts.batch_rows])
                next_row += len(lines)
            if not chunk:
                break
    yield from src.notice()
    if src.guard.error is not None:
        raise ReaderError(f"input ends unexpectedly after record {next_row - 1} "
                          f"(truncated or corrupt compressed file; the records before the cut "
                          f"were kept): {src.guard.error}")


RECORD_KEYS = ("data", "records", "rows", "items", "results", "users", "contacts", "people",
               "customers")


def records_of(doc: object) -> list:
    """The records a JSON document holds: the array itself; for an object that is not itself
    a person (_is_person), its array under a RECORD_KEYS name or its only array of objects
    ({"total": 2, "hits": [...]}), or records keyed by id ({"u1": {...}, "u2": {...}}: the
    key becomes `id`, unless the record has one); else the object is one record."""
    if isinstance(doc, list):
        return doc
    if not isinstance(doc, dict):
        raise ReaderError("JSON document holds no records (expected an array of objects)")
    if _is_person(doc):
        return [doc]
    for key in RECORD_KEYS:
        if isinstance(doc.get(key), list):
            return doc[key]
    lists = [v for v in doc.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
    if len(lists) == 1:
        return lists[0]
    if _keyed_records(doc):
        return [{"id": k, **v} for k, v in doc.items()]
    return [doc]


def _is_person(doc: dict) -> bool:
    """The object's own values name a person: an e-mail or phone, or an id with one more field
    ({"customer_id": 7, "name": ...}). Its lists are then part of it ({"email": ...,
    "orders": [...]}); a wrapper's own values are an id at most ({"id", "total", "data"})."""
    scalars = [k for k, v in doc.items() if not isinstance(v, (list, dict))]
    fields = infer_mapping(scalars).fields
    return bool(fields & {"email", "phone"}) or ("user_id" in fields and len(fields) > 1)


def _keyed_records(doc: dict) -> bool:
    """Two or more objects as values that share a field and name people: records keyed by
    id, not one record's sub-objects ({"home": {"city"}, "work": {"city"}})."""
    values = list(doc.values())
    if len(values) < 2 or not all(isinstance(v, dict) and v for v in values):
        return False
    shared = set(values[0]).intersection(*values[1:])
    return bool(shared) and infer_mapping(list(shared)).has_identity()


def holds_records(doc: object) -> bool:
    """Whether a one-line JSON object is a document of records (a minified export) rather
    than one JSON Lines record: it yields records, none of them the object itself."""
    found = records_of(doc) if isinstance(doc, dict) else []
    return bool(found) and not (len(found) == 1 and found[0] is doc)


def decode_lenient(text: bytes) -> object:
    """msgspec, else what it refuses but JSON writers emit (see _lenient); msgspec's own
    DecodeError (a ValueError) if the text is not JSON even so."""
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        try:
            return _lenient(text)
        except (ValueError, RecursionError):
            raise exc from None


def _read_document(src: _Source, limit: int) -> bytes:
    """The decompressed document, refused past `limit` bytes whatever its size on disk (a
    small .gz can expand to GBs); a truncated stream gives what came before the cut."""
    with src.f as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise ReaderError(f"JSON document over {limit:,} bytes once decompressed "
                          "(CREDITLAKE_JSON_MAX_DOCUMENT_BYTES): export it as JSON Lines to "
                          "stream it")
    return raw


@register("json")
def read_json(path: Path, opts: ReaderOptions, rejects: ReaderRejects | None = None
              ) -> Iterator[pa.RecordBatch]:
    rejects = rejects if rejects is not None else ReaderRejects()
    limits = opts.limits
    src = _Source(path, opts.encoding)
    raw = _read_document(src, limits.max_document_bytes)
    truncated = src.guard.error
    # fast path: the whole document is shallow enough for the parser (+2: {"data": [ ... ]})
    if truncated is None and naive_max_depth(raw) <= limits.max_depth + 2:
        try:
            doc = decode_lenient(raw)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise ReaderError(f"invalid JSON document: {exc}") from exc
        good, rows = [], []
        for i, rec in enumerate(records_of(doc), start=1):
            if isinstance(rec, dict):
                good.append(rec)
                rows.append(i)
            else:
                rejects.add(i, msgspec.json.encode(rec).decode(),
                            "array element is not an object")
    else:
        good, rows = _salvage_elements(raw, truncated, limits, rejects)
    for start in range(0, len(good), opts.batch_rows):
        yield _emit(_frame_of(good[start: start + opts.batch_rows]),
                    rows[start: start + opts.batch_rows])
    yield from src.notice()
    if truncated is not None:
        raise ReaderError(f"input ends unexpectedly after record {len(rows)} (truncated or "
                          f"corrupt compressed file; the records before the cut were kept): "
                          f"{truncated}")


def _salvage_elements(raw: bytes, truncated: Exception | None, limits: ReadLimits,
                      rejects: ReaderRejects) -> tuple[list[dict], list[int]]:
    """Error path (a deep or truncated document): split a top-level array into its elements,
    reject those over a limit or cut off, parse the rest one by one."""
    spans = array_elements(raw)
    if spans is None:  # not an array: the document is one record, over the limit
        if truncated is not None:
            raise ReaderError(f"compressed JSON is truncated or corrupt: {truncated}")
        reason = limits_problem(raw, limits) or "JSON document too deeply nested to parse"
        rejects.add(1, raw[:10_000].decode("utf-8", "replace"), reason)
        return [], []
    good, rows = [], []
    for i, (a, b) in enumerate(spans, start=1):
        text = raw[a:b]
        if reason := limits_problem(text, limits):
            rejects.add(i, text.decode("utf-8", "replace"), reason)
        elif (obj := _decode_object(text, i, rejects)) is not None:
            good.append(obj)
            rows.append(i)
    return good, rows
