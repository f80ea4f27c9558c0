"""CSV/TSV/other-delimiter reader: pyarrow's streaming parser, every column as text.

Ragged rows (wrong field count) are not parsed into columns; they are collected with their
line text and reported through `RaggedRows` so the pipeline rejects them with a reason.
"""

from __future__ import annotations

import contextlib
import csv as pycsv
import io
import re
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from creditlake.readers._batches import notice_batch, unique_names
from creditlake.readers.arrow_util import as_landing_batch
from creditlake.readers.base import ReaderError, ReaderOptions, ReaderRejects, register
from creditlake.readers.csv_resync import find_runaways, without
from creditlake.readers.textio import (
    CP1252_REPAIR,
    TruncationGuard,
    Utf8Stream,
    open_binary,
    read_head,
    replaced_notice,
    scan_utf8,
    sniff_encoding,
)

DELIMITERS = ",;\t|"
# Excel's "sep=;" first line (European exports): it names the delimiter, the header follows
SEP_HINT = re.compile(r"sep=([^\r\n])\r?\n", re.IGNORECASE)


@dataclass(frozen=True)
class _Text:
    """How the file's bytes become the UTF-8 text pyarrow parses: as they are, or through
    Utf8Stream (another encoding, stray Latin-1 bytes to repair, NUL padding to drop, lines
    that end in a lone CR to end in LF, so the runaway-quote scan and line numbers see them)."""
    encoding: str
    transcode: bool
    drop_nul: bool = False
    cr_lines: bool = False

    def stream(self, raw) -> io.BufferedReader | Utf8Stream:  # noqa: ANN001 - a binary stream
        if not self.transcode:
            return raw
        return Utf8Stream(raw, self.encoding, drop_nul=self.drop_nul, cr_to_lf=self.cr_lines)


def sniff_dialect(text: str) -> str:
    """Pick the delimiter from a sample: csv.Sniffer first, else the most consistent one."""
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    sample = "\n".join(lines)
    try:
        return pycsv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except pycsv.Error:
        pass
    best, best_score = ",", -1.0
    for d in DELIMITERS:
        counts = [ln.count(d) for ln in lines]
        if not counts or counts[0] == 0:
            continue
        same = sum(c == counts[0] for c in counts) / len(counts)
        if same * counts[0] > best_score:
            best, best_score = d, same * counts[0]
    return best


def _header(text: str, delimiter: str) -> list[str]:
    # newline="": a line may end in \r alone ("CSV (Macintosh)" exports), as csv expects
    row = next(pycsv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    return unique_names(row)


@register("csv")
def read(path: Path, opts: ReaderOptions, rejects: ReaderRejects | None = None
         ) -> Iterator[pa.RecordBatch]:
    head_bytes = read_head(path)
    if not head_bytes.strip():
        raise ReaderError("empty file: no header and no rows")
    encoding = opts.encoding or sniff_encoding(head_bytes)
    wide = encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32"))
    valid, nuls = (True, 0) if wide else scan_utf8(path)  # NUL is text only in 2-4 byte codes
    head = head_bytes.decode(encoding, errors=CP1252_REPAIR if encoding == "utf-8"
                             else "replace").lstrip("\ufeff")
    if nuls:
        head = head.replace("\x00", "")
    cr_lines = "\r" in head and "\n" not in head  # old Mac exports: "\r" ends every line
    if cr_lines:
        head = head.replace("\r", "\n")
    text = _Text(encoding, encoding != "utf-8" or not valid or nuls > 0 or cr_lines,
                 drop_nul=nuls > 0, cr_lines=cr_lines)
    hint = SEP_HINT.match(head)
    if hint:
        head = head[hint.end():]
    delimiter = opts.delimiter or (hint.group(1) if hint else sniff_dialect(head))
    names = _header(head, delimiter)
    if not names:
        raise ReaderError("no header row found")
    rejects = rejects if rejects is not None else ReaderRejects()
    with contextlib.ExitStack() as stack:
        skip_rows = 1 + bool(hint)  # the header, after a "sep=" line
        path, text, replaced = _resynced(path, text, opts, rejects, stack, skip_rows)
        replaced += yield from _parse(path, names, delimiter, text, opts, rejects, skip_rows)
    if nuls:
        yield notice_batch(f"{nuls} NUL bytes removed (padding: NUL is never text)")
    if replaced:
        yield notice_batch(replaced_notice(replaced, encoding))


def _text_stream(path: Path, text: _Text
                 ) -> tuple[io.BufferedReader | Utf8Stream, TruncationGuard]:
    guard = TruncationGuard(open_binary(path), whole_lines=True)
    return text.stream(io.BufferedReader(guard, 1 << 20)), guard


def _replaced(stream: io.BufferedReader | Utf8Stream) -> int:
    """Bytes the stream's decoder turned into U+FFFD (not text in the file's encoding)."""
    return stream.replaced if isinstance(stream, Utf8Stream) else 0


def _resynced(path: Path, text: _Text, opts: ReaderOptions, rejects: ReaderRejects,
              stack: contextlib.ExitStack, skip_rows: int) -> tuple[Path, _Text, int]:
    """`path` itself, or - when a quoted field runs away - a UTF-8 copy without the broken
    lines (each rejected with its line number; see csv_resync.py); with the bytes replaced
    while copying."""
    stream, _ = _text_stream(path, text)
    with stream as f:
        found = [r for r in find_runaways(f, opts.limits.max_field_lines,
                                          opts.limits.max_record_bytes) if r.line > skip_rows]
    if not found:
        return path, text, 0
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(
        prefix="creditlake-csv-", dir=opts.extra.get("tmp_dir")))) / "resynced.csv"
    removed: list[bytes] = []
    stream, _ = _text_stream(path, text)
    with stream as f, open(tmp, "wb") as out:
        for chunk in without(f, found, removed):
            out.write(chunk)
    for r, line in zip(found, removed, strict=True):
        rejects.add(r.line, line.decode("utf-8", "replace").rstrip("\r\n"),
                    f"line {r.line}: {r.why}; the record is rejected and reading resumes at "
                    f"line {r.line + 1}")
    return tmp, _Text("utf-8", False), _replaced(stream)


def _parse(path: Path, names: list[str], delimiter: str, text: _Text, opts: ReaderOptions,
           rejects: ReaderRejects, skip_rows: int) -> Generator[pa.RecordBatch, None, int]:
    """The file's batches (after `skip_rows` lines: the header, a "sep=" line); returns the
    bytes its decoder replaced."""
    ragged: list[tuple[str, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        # multi-threaded parsing gives no line numbers; they are recovered after the read
        ragged.append((row.text, f"expected {row.expected_columns} fields, "
                                 f"got {row.actual_columns}"))
        return "skip"

    stream, guard = _text_stream(path, text)
    read_opts = pacsv.ReadOptions(column_names=names, skip_rows=skip_rows,
                                  block_size=opts.batch_rows * BLOCK_BYTES_PER_ROW,
                                  use_threads=True)
    parse_opts = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                    invalid_row_handler=on_invalid)
    conv_opts = pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                     strings_can_be_null=True, null_values=[""],
                                     quoted_strings_can_be_null=True)
    next_row = 1
    try:
        with io.BufferedReader(stream, 1 << 20) if text.transcode else stream as f:  # type: ignore[arg-type]
            reader = pacsv.open_csv(f, read_options=read_opts, parse_options=parse_opts,
                                    convert_options=conv_opts)
            for table in _whole_batches(reader, opts.batch_rows):
                yield as_landing_batch(table, next_row)
                next_row += table.num_rows
        if guard.error is not None:
            if guard.cut.strip():  # half a record: rejected, not loaded
                rejects.add(next_row, guard.cut.decode("utf-8", "replace"),
                            "record cut off where the compressed input ends (truncated)")
            raise ReaderError(f"compressed input is truncated or corrupt after "
                              f"{next_row - 1} rows (the records before the cut were kept): "
                              f"{guard.error}")
    except (EOFError, OSError) as exc:
        raise ReaderError(f"input ends unexpectedly (truncated or corrupt compressed file): "
                          f"{exc}") from exc
    except pa.ArrowInvalid as exc:
        raise ReaderError(f"CSV parse error: {exc}") from exc
    finally:
        if ragged:
            lines = _line_numbers(path, [row for row, _ in ragged], text)
            for (row, why), line in zip(ragged, lines, strict=True):
                rejects.add(line, row, f"ragged row at line {line}: {why}")
    return _replaced(stream)


# pyarrow's streaming parser holds about 35 blocks' worth of memory at its peak (10M rows of
# 125 bytes: 0.87 GB with 25.6 MB blocks, 0.52 GB with 12.8 MB), so a block is about half a
# batch (64 bytes a row) and _whole_batches joins them back into batches of ~batch_rows.
BLOCK_BYTES_PER_ROW = 64


def _whole_batches(reader: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """The parser's blocks joined into tables of at least 3/4 of `rows` (the last: the rest).
    A parse error is raised after the blocks read before it, as without the joining."""
    pending: list[pa.RecordBatch] = []
    count = 0
    try:
        for batch in reader:
            if batch.num_rows:
                pending.append(batch)
                count += batch.num_rows
            if count >= rows * 3 // 4:
                yield pa.Table.from_batches(pending)
                pending, count = [], 0
    except Exception:
        if pending:
            yield pa.Table.from_batches(pending)
        raise
    if pending:
        yield pa.Table.from_batches(pending)


def _line_numbers(path: Path, texts: list[str], text: _Text) -> list[int]:
    """1-based line numbers of the given row texts, matched in order by a streaming line scan
    (bounded memory; runs only for files that had ragged rows). 0 when not found. Lines end
    at \n, \r\n or a lone \r, as the parser's do."""
    out = [0] * len(texts)
    i = 0
    raw = io.BufferedReader(TruncationGuard(open_binary(path)))
    stream = io.BufferedReader(text.stream(raw)) if text.transcode else raw
    with io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="") as f:
        for lineno, line in enumerate(f, start=1):
            if i >= len(texts):
                break
            if line.rstrip("\r\n") == texts[i]:
                out[i] = lineno
                i += 1
    return out
