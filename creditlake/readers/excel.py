"""Excel reader (.xlsx, .xlsm, .xls, .xlsb, .ods) on python-calamine (Rust), every sheet.

Each worksheet is its own sub-source "<file>#<sheet>" (opts.sheet picks one). The header row is
the first row, after leading blank/title rows, whose cells are mostly non-empty text; rows
above it are skipped, and `source_row` is the sheet's own 1-based row number so a reject can be
found in Excel. Merged ranges carry their top-left value into every cell they cover. Cells
become text: numbers without a fractional part lose the ".0", dates/datetimes are ISO 8601
("2020-01-02", "2020-01-02T10:30:00"), booleans TRUE/FALSE, empty cells null. A plain number in a
column the header mapping calls created_date, in Excel's serial-date range, is converted as a
serial date (Excel stores dates as numbers; a missing number format is common in exports).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import python_calamine as cal

from creditlake.readers import _xlsx_stream
from creditlake.readers._batches import columns_batch, notice_batch, unique_names
from creditlake.readers.base import ReaderError, ReaderOptions, register, tag_subsource
from creditlake.rules.mapping import infer_mapping

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
HEADER_SCAN_ROWS = 30
STREAM_SHEET_BYTES = 256 << 20  # sheet XML larger than this is streamed, not loaded by calamine
MAX_BATCH_ROWS = 50_000  # cells are Python objects until batched: keep that bounded
_ENCRYPTED_MARK = "EncryptedPackage".encode("utf-16-le")
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)
SERIAL_MIN, SERIAL_MAX = 18_264, 73_051  # 1950-01-01 .. 2099-12-31


def looks_like_xlsx(head: bytes, path: Path | None = None) -> bool:
    """A zip whose parts are a SpreadsheetML workbook. With the file at hand its directory
    decides (xl/workbook.xml is there), not member paths seen in the first bytes: a plain zip
    of CSVs under xl/ is an archive. Without it (or if the directory is unreadable), the
    workbook part's name in the head."""
    if not head.startswith(ZIP_MAGIC):
        return False
    if path is not None:
        import zipfile

        try:
            with zipfile.ZipFile(path) as zf:
                return "xl/workbook.xml" in zf.namelist()
        except (zipfile.BadZipFile, OSError):
            pass
    return b"xl/workbook.xml" in head[:65536]


def looks_like_xls(head: bytes) -> bool:
    """An OLE2 compound file (BIFF .xls, or an encrypted OOXML workbook)."""
    return head.startswith(OLE_MAGIC)


def is_encrypted_ooxml(path: Path) -> bool:
    """Password-protected .xlsx files are OLE2 containers holding an 'EncryptedPackage'."""
    with open(path, "rb") as f:
        head = f.read(4 << 20)
    return head.startswith(OLE_MAGIC) and _ENCRYPTED_MARK in head


def _open(path: Path) -> cal.CalamineWorkbook:
    """Open by content: calamine picks its parser by extension, so a misnamed file is opened
    through a temporary symlink carrying the right extension."""
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic.startswith(OLE_MAGIC) and is_encrypted_ooxml(path):
        raise ReaderError("workbook is password-protected (encrypted); save it without a "
                          "password and upload it again")
    if magic.startswith(ZIP_MAGIC):
        want = (".xlsx", ".xlsm", ".xlsb", ".ods")
        ext = ".xlsx"
    elif magic.startswith(OLE_MAGIC):
        want, ext = (".xls",), ".xls"
    else:
        raise ReaderError("not an Excel workbook: the file is neither an OOXML (zip) nor a "
                          "BIFF (OLE2) container")
    tmp = None
    target = path
    if path.suffix.lower() not in want:
        tmp = tempfile.mkdtemp(prefix="creditlake-xl-")
        target = Path(tmp) / f"workbook{ext}"
        os.symlink(path.resolve(), target)
    try:
        return cal.CalamineWorkbook.from_path(str(target))
    except cal.PasswordError:
        raise ReaderError("workbook is password-protected; save it without a password") from None
    except Exception as exc:  # calamine raises several unrelated types for broken files
        raise ReaderError(f"corrupt or unreadable workbook: {exc}") from None
    finally:
        if tmp:
            os.unlink(target)
            os.rmdir(tmp)


def _cell(v: object) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)
    if isinstance(v, dt.datetime):
        return v.date().isoformat() if v.time() == dt.time() else v.isoformat()
    if isinstance(v, dt.date | dt.time):
        return v.isoformat()
    return str(v)


def _serial_date(v: object) -> str | None:
    if isinstance(v, int | float) and not isinstance(v, bool) and SERIAL_MIN <= v <= SERIAL_MAX:
        d = _EXCEL_EPOCH + dt.timedelta(days=float(v))
        return d.date().isoformat() if d.time() == dt.time() else d.isoformat()
    return _cell(v)


def _column(values: tuple, serial_dates: bool) -> pa.Array:
    if not serial_dates and all(type(v) is str for v in values):
        arr = pa.array(values, pa.string())  # the common all-text column: no per-cell work
        return pa.compute.if_else(pa.compute.equal(arr, ""), pa.scalar(None, pa.string()), arr)
    conv = _serial_date if serial_dates else _cell
    return pa.array([conv(v) for v in values], pa.string())


def detect_header(rows: list[list]) -> int:
    """Index (into `rows`) of the header row; see the module docstring."""
    filled = [sum(1 for v in r if v not in ("", None)) for r in rows]
    widest = max(filled, default=0)
    for i, r in enumerate(rows):
        n = filled[i]
        if n == 0:
            continue
        texts = sum(1 for v in r if isinstance(v, str) and v.strip())
        if n >= max(min(2, widest), 0.5 * widest) and texts >= 0.8 * n:
            return i
    return next((i for i, n in enumerate(filled) if n), 0)


def _apply_merges(rows: list[list], merges: list, r0: int, c0: int) -> None:
    """Copy each merged range's top-left value into its other cells (rows is sheet-relative
    to (r0, c0) = the sheet's first used cell)."""
    for (a_r, a_c), (b_r, b_c) in merges:
        top = a_r - r0
        if top < 0 or top >= len(rows):
            continue
        row = rows[top]
        value = row[a_c - c0] if 0 <= a_c - c0 < len(row) else ""
        for r in range(top, min(b_r - r0 + 1, len(rows))):
            for c in range(max(a_c - c0, 0), b_c - c0 + 1):
                if c < len(rows[r]) and rows[r][c] in ("", None):
                    rows[r][c] = value


def _read_sheet(wb: cal.CalamineWorkbook, name: str, file: str, opts: ReaderOptions,
                stream: _xlsx_stream.XlsxStream | None) -> Iterator[pa.RecordBatch]:
    sub = f"{file}#{name}"
    if stream is not None and stream.sheet_bytes(name) > STREAM_SHEET_BYTES:
        # calamine holds a whole sheet in memory (~1.5x its XML); huge sheets are streamed
        r0, c0, rows_iter = stream.rows(name)
        merges: list = []
    else:
        try:
            sheet = wb.get_sheet_by_name(name)
            if sheet.start is None:
                yield notice_batch(f"sheet {name!r} is empty", sub)
                return
            # iter_rows() starts at the sheet's row 0 but at its first used column
            r0, c0 = 0, sheet.start[1]
            rows_iter = sheet.iter_rows()
            merges = sheet.merged_cell_ranges or []
        except cal.PasswordError:
            raise ReaderError(f"sheet {name!r} is password-protected") from None
        except Exception as exc:
            raise ReaderError(f"sheet {name!r} cannot be read: {exc}") from None
    yield from _sheet_batches(name, sub, r0, c0, rows_iter, merges, opts)


def _sheet_batches(name: str, sub: str, r0: int, c0: int, rows_iter: Iterator[list],
                   merges: list, opts: ReaderOptions) -> Iterator[pa.RecordBatch]:
    head = [list(r) for _, r in zip(range(HEADER_SCAN_ROWS), rows_iter, strict=False)]
    if not any(any(v not in ("", None) for v in r) for r in head):
        yield notice_batch(f"sheet {name!r} is empty", sub)
        return
    h = detect_header(head)  # before filling merges: a merged title must not look like a header
    _apply_merges(head, merges, r0, c0)
    names = unique_names(head[h])
    dates = set(infer_mapping(names).targets.get("created_date", []))
    excel_row = r0 + h + 2  # 1-based sheet row of the first data row
    merge_rows = bool(merges) and any(b[0] - r0 >= HEADER_SCAN_ROWS for _, b in merges)
    source = itertools.chain(head[h + 1:], (list(r) if merge_rows else r for r in rows_iter))
    yielded = False
    while rows := list(itertools.islice(source, min(opts.batch_rows, MAX_BATCH_ROWS))):
        if merge_rows:
            _apply_merges(rows, merges, excel_row - 1, c0)
        width = max(len(names), max(len(r) for r in rows))
        if width > len(names):
            names = unique_names([*names, *[None] * (width - len(names))])
        numbers, kept = [], []
        for i, r in enumerate(rows):  # drop fully blank rows (not records)
            if any(v not in ("", None) for v in r):
                kept.append(r if len(r) == width else [*r, *[""] * (width - len(r))])
                numbers.append(excel_row + i)
        excel_row += len(rows)
        if not kept:
            continue
        cols = list(zip(*kept, strict=True))
        arrays = [_column(c, names[j] in dates) for j, c in enumerate(cols)]
        yield tag_subsource(columns_batch(names, arrays, 0, row_numbers=numbers), sub)
        yielded = True
    if not yielded:
        yield notice_batch(f"sheet {name!r} has a header row but no data rows", sub)


@register("excel")
def read(path: Path, opts: ReaderOptions) -> Iterator[pa.RecordBatch]:
    path = Path(path)
    wb = _open(path)
    stream = _xlsx_stream.XlsxStream.open(path)
    try:
        sheets = [m.name for m in wb.sheets_metadata
                  if m.typ == cal.SheetTypeEnum.WorkSheet]
        if opts.sheet is not None:
            if opts.sheet not in sheets:
                raise ReaderError(f"sheet {opts.sheet!r} not found; the workbook has "
                                  f"{', '.join(sheets) or 'no worksheets'}")
            sheets = [opts.sheet]
        if not sheets:
            raise ReaderError("workbook has no worksheets")
        for name in sheets:
            yield from _read_sheet(wb, name, path.name, opts, stream)
    finally:
        wb.close()
        if stream is not None:
            stream.close()
