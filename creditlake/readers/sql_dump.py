"""SQL dump reader: mysqldump / mariadb-dump and pg_dump (COPY and --inserts), streamed.

The file is scanned statement by statement with one possessive regex (quotes, identifiers and
comments respected, so a `;` inside a value never ends a statement); a buffer of a few MB is
kept, never the file. Rows are decoded column-wise: the VALUES list of a statement is split
into tokens by one `findall`, reshaped into columns by list slicing, and unquoted/unescaped
with vectorized Polars string ops. COPY ... FROM stdin blocks go through Arrow's CSV parser
(tab-separated, \\N = NULL) with the same vectorized unescaping.

Every table is its own sub-source, tagged "<file>#<table>". Tables without person-like columns
(see is_person_table) are skipped with a notice batch (see _batches.notice_batch). A statement
that does not parse is reported by a notice and skipped; scanning resumes at the next statement
and, after all good rows are yielded, a ReaderError summarises the skipped statements.
"""

from __future__ import annotations

import codecs
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from creditlake.readers._batches import columns_batch, notice_batch
from creditlake.readers.base import (
    ReaderError,
    ReaderOptions,
    ReaderRejects,
    register,
    tag_subsource,
)
from creditlake.readers.textio import CP1252_REPAIR, open_binary, read_head
from creditlake.rules.mapping import infer_mapping

CHUNK_CHARS = 4 << 20             # read size
MAX_STATEMENT_CHARS = 64 << 20    # a longer "statement" means broken quoting: give up
HEAD_BYTES = 64 << 10
DECODE_ROWS = 50_000
SLICE_CHARS = 2 << 20             # INSERTs longer than this are tokenized in runs of tuples
SLICE_TUPLES = 5_000

# --------------------------------------------------------------------------------- detection

_DUMP_MARKERS = (b"-- MySQL dump", b"-- MariaDB dump", b"-- PostgreSQL database dump",
                 b"-- Dumped from database version", b"/*!40101 SET")
_STMT_START = re.compile(
    rb"^\s*(?:INSERT\s+(?:IGNORE\s+)?INTO|REPLACE\s+INTO|CREATE\s+TABLE|COPY\s+\S+.*FROM\s+stdin"
    rb"|DROP\s+TABLE|LOCK\s+TABLES|SET\s+\w+\s*=|BEGIN;|START\s+TRANSACTION)",
    re.I | re.M,
)


def looks_like_sql_dump(head: bytes) -> bool:
    """A dump banner, or SQL statements at line starts among the first lines."""
    if any(m in head for m in _DUMP_MARKERS):
        return True
    text = head.lstrip(b"\xef\xbb\xbf")
    lines = [ln for ln in text.splitlines()[:200] if ln.strip() and not ln.lstrip().startswith(
        (b"--", b"#", b"/*"))]
    return bool(lines) and bool(_STMT_START.match(lines[0]))


def sniff_dialect(head: str) -> tuple[str, bool]:
    """('mysql'|'postgres', backslash_escapes_in_strings)."""
    pg = ("PostgreSQL database dump" in head or "FROM stdin;" in head
          or "standard_conforming_strings" in head or "pg_catalog." in head)
    if pg:
        return "postgres", bool(re.search(r"standard_conforming_strings\s*=\s*'?off", head))
    return "mysql", True


# ------------------------------------------------------------------------- person heuristic

def is_person_table(columns: list[str]) -> bool:
    """A table holds people when the header mapping (rules/mapping.py) finds an identity field
    (email, phone, user_id) and either email/phone or two more master fields: `products(id,
    name, price)` or `orders(id, user_id, total)` are not people, `users(id, name, city)` is."""
    fields = infer_mapping(columns).fields
    if not fields & {"email", "phone", "user_id"}:
        return False
    return bool(fields & {"email", "phone"}) or len(fields) >= 3


# ------------------------------------------------------------------------------ statements

def _stmt_regex(backslash: bool, mysql: bool) -> re.Pattern[str]:
    sq = r"'[^'\\]*+(?:\\.[^'\\]*+)*+'" if backslash else r"'[^']*+'"
    dq = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"' if mysql else r'"[^"]*+"'
    estr = r"|(?<![\w])[Ee]'[^'\\]*+(?:\\.[^'\\]*+)*+'" if not backslash else ""
    hash_comment = r"|\#[^\n]*+\n" if mysql else ""
    plain = r"[^'\"`;\-/#Ee]++" if not backslash else r"[^'\"`;\-/#]++"
    return re.compile(
        rf"(?:{plain}{estr}|{sq}|{dq}|`[^`]*+`|--[^\n]*+\n{hash_comment}|/\*.*?\*/|[-/#Ee])*+;",
        re.S,
    )


# whitespace, comments and psql meta-commands (\connect, \restrict ...: end at the newline)
_LEADING_JUNK = re.compile(
    r"(?:\s++|--[^\n]*+(?:\n|$)|\#[^\n]*+(?:\n|$)|/\*(?!!).*?\*/|\\[A-Za-z][^\n]*+(?:\n|$))*+",
    re.S)
_IDENT = r'(?:`(?:[^`]|``)+`|"(?:[^"]|"")+"|[^\s.,()`";]+)'
_QNAME = rf"{_IDENT}(?:\s*\.\s*{_IDENT})*"
_INSERT = re.compile(
    rf"(?:INSERT|REPLACE)\s+(?:(?:IGNORE|DELAYED|LOW_PRIORITY|HIGH_PRIORITY)\s+)?INTO\s+"
    rf"({_QNAME})\s*(?:\(([^)]*)\)\s*)?VALUES\s*", re.I | re.S)
_COPY = re.compile(rf"COPY\s+({_QNAME})\s*(?:\(([^)]*)\))?\s+FROM\s+stdin\b", re.I | re.S)
_CREATE = re.compile(
    rf"CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+|UNLOGGED\s+)?TABLE\s+"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?({_QNAME})\s*\(", re.I | re.S)
_RESYNC = re.compile(
    r"\n(?=(?:INSERT\s|REPLACE\s|COPY\s|CREATE\s|DROP\s|ALTER\s|LOCK\s|UNLOCK\s|SET\s|--|/\*))",
    re.I)
_IDENT_TOKEN = re.compile(_IDENT)
_UPSERT = re.compile(r"\s*ON\s+(?:DUPLICATE\s+KEY\s+UPDATE|CONFLICT)\b", re.I)


def _tuple_run_regex(backslash: bool) -> re.Pattern[str]:
    """Up to SLICE_TUPLES whole "(...)," tuples (parentheses only count outside strings)."""
    sq = r"'[^'\\]*+(?:\\.[^'\\]*+)*+'" if backslash else r"'[^']*+'"
    tup = rf"\((?:{sq}|[^'()])*+\)"
    return re.compile(rf"(?:\s*+{tup}\s*+(?:,|\Z)){{1,{SLICE_TUPLES}}}", re.S)


_CONSTRAINT_WORDS = {"PRIMARY", "KEY", "UNIQUE", "CONSTRAINT", "INDEX", "FULLTEXT", "SPATIAL",
                     "FOREIGN", "CHECK", "PERIOD", "LIKE", "EXCLUDE"}


def _unquote_ident(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "`\"":
        q = s[0]
        return s[1:-1].replace(q + q, q)
    return s


def _qname(s: str) -> str:
    return ".".join(_unquote_ident(p) for p in _IDENT_TOKEN.findall(s))


def _split_top_level(body: str) -> list[str]:
    """Split a CREATE TABLE body at commas outside parentheses and quotes."""
    parts, depth, start, i, n = [], 0, 0, 0, len(body)
    while i < n:
        c = body[i]
        if c in "'\"`":
            j = i + 1
            while j < n and body[j] != c:
                j += 2 if body[j] == "\\" and c == "'" else 1
            i = j
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
        i += 1
    parts.append(body[start:])
    return parts


def _create_columns(stmt: str, m: re.Match[str]) -> list[str]:
    body = stmt[m.end():]
    body = body[: body.rfind(")")] if ")" in body else body
    cols = []
    for part in _split_top_level(body):
        part = part.strip()
        tok = _IDENT_TOKEN.match(part)
        if not tok:
            continue
        word = tok.group(0)
        if word[0] not in "`\"" and word.upper() in _CONSTRAINT_WORDS:
            continue
        cols.append(_unquote_ident(word))
    return cols


def _column_list(s: str) -> list[str]:
    return [_unquote_ident(p) for p in s.split(",")] if s.strip() else []


# ---------------------------------------------------------------------------- value decoding

_MY_TOKENS = re.compile(
    r"(?:_[A-Za-z0-9]+\s*|[bBxXnN])?'[^'\\]*+(?:(?:\\.|'')[^'\\]*+)*+'|[^,()\s']++|[(),]", re.S)
_PG_TOKENS = re.compile(
    r"(?<![\w])[Ee]'[^'\\]*+(?:\\.[^'\\]*+)*+'|'[^']*+(?:''[^']*+)*+'|[^,()\s']++|[(),]", re.S)
_MY_ESC = (["\\\\", "\\'", '\\"', "\\n", "\\r", "\\t", "\\0", "\\Z", "\\b", "''"],
           ["\\", "'", '"', "\n", "\r", "\t", "\x00", "\x1a", "\b", "'"])
_PG_E_ESC = (["\\\\", "\\'", "\\n", "\\r", "\\t", "\\b", "\\f", "''"],
             ["\\", "'", "\n", "\r", "\t", "\b", "\f", "'"])
_COPY_ESC = (["\\\\", "\\n", "\\r", "\\t", "\\b", "\\f", "\\v"],
             ["\\", "\n", "\r", "\t", "\b", "\f", "\v"])


def _decode_tokens(tokens: list[str], backslash: bool) -> pa.Array:
    """Raw SQL literals of one column -> Arrow strings (NULL -> null), vectorized.

    Fast path: plain '...' literals are stripped and unescaped only where they hold a
    backslash/quote. Prefixed literals (_binary '..', N'..', E'..') take the regex path."""
    df = pl.DataFrame([pl.Series("v", tokens, dtype=pl.String)])
    e = pl.col("v")
    quoted = e.str.starts_with("'")
    prefixed = df.select((~quoted & e.str.contains("'", literal=True)).any()).item()
    if prefixed:
        pat = (r"(?s)^(?:_[A-Za-z0-9]+\s*|[bBxXnN])?'(.*)'$" if backslash
               else r"(?s)^[Ee]?'(.*)'$")
        inner = e.str.extract(pat, 1)
        quoted = inner.is_not_null()
    else:
        inner = e.str.strip_prefix("'").str.strip_suffix("'")
    if backslash:
        dec = pl.when(inner.str.contains(r"[\\']")).then(
            inner.str.replace_many(*_MY_ESC, leftmost=True)).otherwise(inner)
    else:
        estr = e.str.starts_with("E'") | e.str.starts_with("e'")
        dec = (pl.when(estr).then(inner.str.replace_many(*_PG_E_ESC, leftmost=True))
               .otherwise(inner.str.replace_all("''", "'", literal=True)))
    out = df.select(pl.when(quoted).then(dec)
                    .when(e.str.to_uppercase() == "NULL").then(pl.lit(None, pl.String))
                    .otherwise(e).alias("v"))
    return out.to_series().to_arrow().cast(pa.string())


def _unescape_copy(arr: pa.Array) -> pa.Array:
    s = pl.from_arrow(arr)
    return s.str.replace_many(*_COPY_ESC, leftmost=True).to_arrow().cast(pa.string())


# ------------------------------------------------------------------------------- the reader

@dataclass
class _Table:
    name: str
    columns: list[str] | None
    keep: bool
    next_row: int = 1
    pending: list[list[pa.Array]] = field(default_factory=list)
    pending_rows: int = 0
    raw: list[list[str]] = field(default_factory=list)  # undecoded SQL literals per column
    raw_rows: int = 0


class _DumpReader:
    def __init__(self, path: Path, opts: ReaderOptions, rejects: ReaderRejects | None) -> None:
        self.path, self.opts, self.file, self.rejects = path, opts, path.name, rejects
        head = read_head(path, HEAD_BYTES).decode("utf-8", "replace")
        self.dialect, self.backslash = sniff_dialect(head)
        self.stmt_re = _stmt_regex(self.backslash, self.dialect == "mysql")
        self.tok_re = _MY_TOKENS if self.backslash else _PG_TOKENS
        self.run_re = _tuple_run_regex(self.backslash)
        self.created: dict[str, list[str]] = {}
        self.tables: dict[str, _Table] = {}
        self.current: _Table | None = None
        self.errors: list[str] = []
        self.skipped: list[str] = []  # non-person tables
        self.line = 1

    # --- table bookkeeping
    def _table(self, raw_name: str, cols: list[str]) -> tuple[_Table, list[pa.RecordBatch]]:
        name = _qname(raw_name)
        key = name.lower()
        out: list[pa.RecordBatch] = []
        if self.current is not None and self.current.name.lower() != key:
            out.extend(self._flush(self.current))
        t = self.tables.get(key)
        if t is None:
            if not cols:
                cols = self.created.get(key) or self.created.get(key.rsplit(".", 1)[-1]) or []
            wanted = self.opts.table
            sub = f"{self.file}#{name}"
            if wanted and wanted.lower() not in (key, key.rsplit(".", 1)[-1]):
                keep = False
            elif cols and not wanted and not is_person_table(cols):
                keep = False
                self.skipped.append(f"{name} ({', '.join(cols[:12])})")
                out.append(notice_batch(
                    f"table {name} skipped: no person columns ({', '.join(cols[:12])})", sub))
            else:
                keep = True
            t = _Table(name, cols or None, keep)
            self.tables[key] = t
        self.current = t
        return t, out

    def _add(self, t: _Table, arrays: list[pa.Array]) -> Iterator[pa.RecordBatch]:
        t.pending.append(arrays)
        t.pending_rows += len(arrays[0])
        if t.pending_rows >= self.opts.batch_rows:
            yield from self._flush(t)

    def _add_raw(self, t: _Table, columns: list[list[str]]) -> Iterator[pa.RecordBatch]:
        """Literals are decoded in slabs of DECODE_ROWS: one Polars call per column per slab
        instead of one per statement (statements hold only ~1000 rows)."""
        if not t.raw:
            t.raw = [[] for _ in columns]
        for acc, col in zip(t.raw, columns, strict=True):
            acc.extend(col)
        t.raw_rows += len(columns[0])
        if t.raw_rows >= DECODE_ROWS:
            yield from self._add(t, self._decode_raw(t))

    def _decode_raw(self, t: _Table) -> list[pa.Array]:
        arrays = [_decode_tokens(col, self.backslash) for col in t.raw]
        t.raw, t.raw_rows = [], 0
        return arrays

    def _flush(self, t: _Table) -> list[pa.RecordBatch]:
        if t.raw_rows:
            t.pending.append(self._decode_raw(t))
            t.pending_rows += len(t.pending[-1][0])
        if not t.pending_rows or t.columns is None:
            return []
        cols = [pa.concat_arrays([p[i] for p in t.pending]) for i in range(len(t.columns))]
        batch = columns_batch(t.columns, cols, t.next_row)
        t.next_row += t.pending_rows
        t.pending, t.pending_rows = [], 0
        return [tag_subsource(batch, f"{self.file}#{t.name}")]

    def _bad(self, line: int, what: str, text: str) -> list[pa.RecordBatch]:
        """Report an unreadable statement/row: a notice batch, a reject (when the caller
        collects them) numbered in the current table's row sequence, and the summary error."""
        t = self.current
        snippet = " ".join(text[:120].split())
        msg = f"line {line}: {what}: {snippet}"
        out = []
        if self.rejects is not None:
            row = 0
            if t is not None:
                out.extend(self._flush(t))
                row, t.next_row = t.next_row, t.next_row + 1
            self.rejects.add(row, text, f"{self.file}{'#' + t.name if t else ''} line {line}: "
                                        f"{what}")
        else:
            self.errors.append(msg)
        out.append(notice_batch(f"skipped at {msg}", f"{self.file}#{t.name}" if t else None))
        return out

    # --- statements
    def _insert(self, stmt: str, m: re.Match[str], line: int) -> Iterator[pa.RecordBatch]:
        t, out = self._table(m.group(1), _column_list(m.group(2) or ""))
        yield from out
        if not t.keep:
            return
        start, end = m.end(), stmt.rfind(")") + 1
        if end - start <= SLICE_CHARS:
            yield from self._values(t, stmt, start, end)
            return
        # A huge statement (one INSERT holding a whole table): tokenize it a run of whole
        # tuples at a time, so the token lists stay small whatever the statement size.
        run = self.run_re
        pos = start
        while pos < end and not self._failed:
            r = run.match(stmt, pos, end)
            if (r is None or r.end() == pos) and _UPSERT.match(stmt, pos, end):
                return  # "ON DUPLICATE KEY UPDATE ..." / "ON CONFLICT ...": not rows
            if r is None or r.end() == pos:
                self._failed = (f"VALUES of table {t.name} do not parse after character "
                                f"{pos - start} (earlier rows of the statement were read)")
                return
            yield from self._values(t, stmt, pos, r.end())
            pos = r.end()

    def _values(self, t: _Table, stmt: str, start: int, end: int) -> Iterator[pa.RecordBatch]:
        """Rows of `stmt[start:end]` = "(v, v, ...), (...)" (a trailing comma is fine)."""
        # tokens: "(" v "," v ... ")" "," "(" ...; with a trailing "," every row is k tokens
        tokens = self.tok_re.findall(stmt, start, end)
        for i in range(len(tokens) - 1, 0, -1):  # drop an upsert tail (only bare words match)
            if tokens[i].upper() == "ON" and tokens[i - 1] == ")" and i + 1 < len(tokens) \
                    and tokens[i + 1].upper() in ("DUPLICATE", "CONFLICT"):
                del tokens[i:]
                break
        if not tokens or tokens[-1] != ",":
            tokens.append(",")
        ncols = len(t.columns) if t.columns else (tokens.index(")") // 2 if ")" in tokens else 0)
        k = 2 * ncols + 2
        nrows = len(tokens) // k if ncols else 0
        ok = nrows > 0 and len(tokens) == nrows * k and tokens[0::k].count("(") == nrows \
            and tokens[k - 2::k].count(")") == nrows and all(
                tokens[j::k].count(",") == nrows for j in (*range(2, k - 2, 2), k - 1))
        if not ok:
            self._failed = f"VALUES of table {t.name} do not parse as {ncols}-column rows"
            return
        if t.columns is None:  # no column list and no CREATE TABLE: keep, mapping decides
            t.columns = [f"column_{i}" for i in range(1, ncols + 1)]
        yield from self._add_raw(t, [tokens[1 + 2 * j::k] for j in range(ncols)])

    def _copy_rows(self, t: _Table, data: str, line: int) -> Iterator[pa.RecordBatch]:
        if not t.keep or not data:
            return
        assert t.columns is not None
        try:
            tbl = pacsv.read_csv(
                io.BytesIO(data.encode()),
                read_options=pacsv.ReadOptions(column_names=t.columns, block_size=8 << 20),
                parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False,
                                                 escape_char=False, double_quote=False,
                                                 ignore_empty_lines=False),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(t.columns, pa.string()), null_values=["\\N"],
                    strings_can_be_null=True, quoted_strings_can_be_null=False),
            )
            arrays = [_unescape_copy(c.combine_chunks()) for c in tbl.columns]
        except pa.ArrowInvalid:
            yield from self._copy_rows_slow(t, data, line)
            return
        yield from self._add(t, arrays)

    def _copy_rows_slow(self, t: _Table, data: str, line: int) -> Iterator[pa.RecordBatch]:
        """Error path only: split lines in Python to keep the good rows of a broken block;
        bad lines keep their place in the row numbering (as rejects)."""
        assert t.columns is not None
        yield from self._flush(t)
        rows, numbers, bad = [], [], []
        for i, ln in enumerate(data.rstrip("\n").split("\n")):
            f = ln.split("\t")
            if len(f) == len(t.columns):
                rows.append([None if v == "\\N" else v for v in f])
                numbers.append(t.next_row + i)
            else:
                bad.append((i, ln))
        start = t.next_row
        if rows:
            cols = [_unescape_copy(pa.array(list(c), pa.string()))
                    for c in zip(*rows, strict=True)]
            batch = columns_batch(t.columns, cols, 0, row_numbers=numbers)
            yield tag_subsource(batch, f"{self.file}#{t.name}")
        for i, text in bad:
            t.next_row = start + i
            yield from self._bad(line + i, f"COPY row of table {t.name} has "
                                 f"{text.count(chr(9)) + 1} fields, expected {len(t.columns)}",
                                 text)
        t.next_row = start + len(rows) + len(bad)

    # --- main loop
    def __iter__(self) -> Iterator[pa.RecordBatch]:
        # UTF-8; bytes that are not (latin1 dumps, stray cp1252) decode as cp1252, not U+FFFD.
        # Decoded here rather than by TextIOWrapper so that a truncated .gz/.bz2/.zst still
        # yields every byte before the cut (a wrapper loses its pending chunk on the error).
        decoder = codecs.getincrementaldecoder("utf-8")(errors=CP1252_REPAIR)
        with open_binary(self.path) as fh:  # gzip/bz2/zstd decompressed transparently
            buf, pos, eof = "", 0, False
            copy_table: _Table | None = None

            read1 = getattr(fh, "read1", fh.read)  # one decompression step: no data lost

            def refill(min_chars: int = CHUNK_CHARS) -> None:
                nonlocal buf, pos, eof
                parts, got = [], 0
                while got < max(CHUNK_CHARS, min_chars) and not eof:
                    try:
                        data = read1(1 << 20)
                    except (EOFError, OSError, zlib.error) as exc:  # truncated stream
                        self.errors.append(f"line {self.line}: compressed stream is truncated "
                                           f"or corrupt ({exc}); the dump ends there")
                        data = b""
                    text = decoder.decode(data, final=not data)
                    parts.append(text)
                    got += len(text)
                    eof = not data
                buf = buf[pos:] + "".join(parts)
                pos = 0

            refill()
            while True:
                if copy_table is not None:  # inside COPY ... FROM stdin data
                    end, term_len = self._find_copy_end(buf, pos, eof)
                    if end < 0:
                        if eof:
                            yield from self._copy_rows(copy_table, buf[pos:], self.line)
                            yield from self._bad(self.line, f"COPY data of table "
                                                 f"{copy_table.name} is not terminated by \\.",
                                                 "(end of file)")
                            copy_table = None
                            pos = len(buf)
                            break
                        cut = buf.rfind("\n", pos) + 1
                        if cut > pos:
                            yield from self._copy_rows(copy_table, buf[pos:cut], self.line)
                            self.line += buf.count("\n", pos, cut)
                            pos = cut
                        refill()
                        continue
                    yield from self._copy_rows(copy_table, buf[pos:end], self.line)
                    self.line += buf.count("\n", pos, end + term_len)
                    pos = end + term_len
                    copy_table = None
                    continue

                j = _LEADING_JUNK.match(buf, pos)
                if j and j.end() > pos:
                    if j.end() == len(buf) and not eof:
                        refill()
                        continue
                    self.line += buf.count("\n", pos, j.end())
                    pos = j.end()
                if pos >= len(buf):
                    if eof:
                        break
                    refill()
                    continue
                m = self.stmt_re.match(buf, pos)
                if m is None:
                    if not eof and len(buf) - pos < MAX_STATEMENT_CHARS:
                        refill(2 * (len(buf) - pos))
                        continue
                    # no terminating ';' (broken quoting or truncated file): resync or stop
                    rest = buf[pos:]
                    r = _RESYNC.search(rest, 1)
                    if r is None:
                        yield from self._cut_off(rest)
                        break
                    yield from self._bad(self.line, "unterminated statement", rest[: r.start()])
                    self.line += rest.count("\n", 0, r.end())
                    pos += r.end()
                    continue
                stmt = buf[pos:m.end()]
                start_line = self.line
                self._failed = None
                yield from self._statement(stmt, start_line)
                if self._failed:
                    # broken quoting can swallow the next statements: resume at the first line
                    # inside this one that starts a statement, so only the broken one is lost
                    r = _RESYNC.search(stmt, 1)
                    cut = r.end() if r else len(stmt)
                    yield from self._bad(start_line, self._failed, stmt[:cut])
                    stmt = stmt[:cut]
                self.line += stmt.count("\n")
                pos += len(stmt)
                if self._pending_copy is not None:
                    copy_table = self._pending_copy
                    self._pending_copy = None
                    nl = buf.find("\n", pos)
                    while nl < 0 and not eof:
                        refill()
                        nl = buf.find("\n", pos)
                    pos = len(buf) if nl < 0 else nl + 1
                    self.line += 1
        if self.current is not None:
            yield from self._flush(self.current)
        for t in self.tables.values():
            yield from self._flush(t)
        if self.skipped and not any(t.keep and t.next_row > 1 for t in self.tables.values()):
            raise ReaderError("no person tables in the dump; skipped (no e-mail, phone or "
                              f"name columns): {'; '.join(self.skipped[:10])}")
        if self.errors:
            n = len(self.errors)
            raise ReaderError(f"{n} statement(s) in the dump could not be read and were skipped "
                              f"(rows before and after them were read); first: {self.errors[0]}")

    _pending_copy: _Table | None = None
    _failed: str | None = None

    def _cut_off(self, rest: str) -> Iterator[pa.RecordBatch]:
        """The file ends inside a statement. An INSERT's whole tuples before the cut are rows
        (a dump cut mid-INSERT loses the tuple it cuts, not the statement); the rest is one
        reject."""
        whole = 0
        if m := _INSERT.match(rest):
            pos = m.end()
            while (r := self.run_re.match(rest, pos)) and r.end() > pos:
                pos = r.end()
            whole = pos if pos > m.end() else 0
        if not whole:
            yield from self._bad(self.line, "statement without a terminating ';'", rest)
            return
        self._failed = None
        yield from self._statement(rest[:whole].rstrip().rstrip(",") + ";", self.line)
        if self._failed:  # as for a whole statement: what was read stays, the rest is rejected
            yield from self._bad(self.line, self._failed, rest)
            return
        tail = rest[whole:]
        cut = whole + len(tail) - len(tail.lstrip())  # where the cut tuple starts
        line = self.line + rest.count("\n", 0, cut)
        if tail.strip():
            yield from self._bad(line, "row cut off where the file ends (truncated; the "
                                       "statement's rows before it were read)", rest[cut:])

    @staticmethod
    def _find_copy_end(buf: str, pos: int, eof: bool) -> tuple[int, int]:
        """Index of the '\\.' terminator line of a COPY block (and its length), or -1."""
        i = pos
        while True:
            i = buf.find("\\.", i)
            if i < 0:
                return -1, 0
            if i == pos or buf[i - 1] == "\n":
                rest = buf[i + 2: i + 4]
                if rest.startswith("\n"):
                    return i, 3
                if rest.startswith("\r\n"):
                    return i, 4
                if i + 2 == len(buf):
                    return (i, 2) if eof else (-1, 0)  # at EOF a final "\\." needs no newline
            i += 2

    def _statement(self, stmt: str, line: int) -> Iterator[pa.RecordBatch]:
        if m := _INSERT.match(stmt):
            yield from self._insert(stmt, m, line)
        elif m := _COPY.match(stmt):
            t, out = self._table(m.group(1), _column_list(m.group(2) or ""))
            yield from out
            if t.columns is None:
                yield from self._bad(line, f"COPY of table {t.name} without a column list", stmt)
                t.keep = False
            self._pending_copy = t
        elif m := _CREATE.match(stmt):
            name = _qname(m.group(1)).lower()
            cols = _create_columns(stmt, m)
            self.created[name] = cols
            self.created.setdefault(name.rsplit(".", 1)[-1], cols)
        elif re.match(r"(?:INSERT|REPLACE|COPY)\b", stmt, re.I):
            self._failed = "statement does not parse"


@register("sql")
def read(path: Path, opts: ReaderOptions, rejects: ReaderRejects | None = None
         ) -> Iterator[pa.RecordBatch]:
    """With `rejects`, unreadable statements/rows go there (like the CSV reader's ragged rows)
    and no error is raised for them; without it, a ReaderError at the end summarises them."""
    yield from _DumpReader(Path(path), opts, rejects)
