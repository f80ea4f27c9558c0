"""Filter values read the way ingestion reads them: one definition, the ingestion compiler.

Every equality value of a request (country, status, e-mail, phone, dates, names, ...) is put in
one small frame and run through `rules.polars.clean`, the very function that normalizes ingested
rows, so "USA", "United States" and "us" search for the "US" that ingestion stored, and a rule
that changes there changes here. Phones are read once per country of the same request (the
national number "020 7946 0958" with country GB is "+442079460958").

`clean` has a fixed cost of a few milliseconds per call whatever the row count, so a request
makes at most one call and every value read is remembered (bounded), keyed by field, value and
country. A date already written as ingestion stores it (YYYY-MM-DD in the stored year range) is
its own reading and skips the call: date ranges are the filter customers vary most (a test
checks the shortcut against `clean` on the edges).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from typing import Any

import phonenumbers
import polars as pl

from creditlake.query.errors import InvalidQuery
from creditlake.rules import vocab
from creditlake.rules.polars import clean
from creditlake.rules.vocab import WARNINGS
from creditlake.schema import SOURCE_FIELDS, STATUSES

# Fields ingestion normalizes: their filter values go through `clean`.
NORMALIZED_FIELDS = frozenset(SOURCE_FIELDS)
# Fields where a value ingestion cannot read is an error (others: free text, kept as read).
_CLOSED = {
    "country": "use an ISO 3166 code or an English name, e.g. 'US', 'USA' or 'United States' "
               "(GET /api/v1/fields lists them)",
    "status": f"use one of {', '.join(STATUSES)} or a synonym such as 'enabled' or 'banned'",
    "created_date": "use YYYY-MM-DD (the other formats ingestion reads work too, e.g. "
                    "'01/15/2020' or '15.01.2020')",
    "phone": "use digits with an optional + prefix, e.g. '+44 20 7946 0958', or a national "
             "number with a country filter",
}
_EXTENSION = re.compile(vocab.PHONE_EXTENSION_PATTERN, re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]")
_PHONE_FORMATTING = re.compile(r"[\s().\-/]+")
_SPACES = re.compile(r"\s+")
CACHE_SIZE = 20_000
_MEMO_ONLY: ContextVar[bool] = ContextVar("memo_only", default=False)


class RulesNeeded(Exception):  # noqa: N818 - a signal, not an error
    """Raised under memo_only() when a value has not been read before (a clean() call)."""


@contextmanager
def memo_only() -> Iterator[None]:
    """Read values from the memo (and stored-form dates) only, else raise RulesNeeded: lets a
    caller compile on the spot when that is cheap and move the rules' call off its thread."""
    token = _MEMO_ONLY.set(True)
    try:
        yield
    finally:
        _MEMO_ONLY.reset(token)


@dataclass(frozen=True)
class Value:
    """One filter value to read: field, value as sent, and (phones) the country it is dialled in."""

    field: str
    text: str
    country: str | None = None


class _Memo:
    """A small thread-safe LRU of values already read (the API serves requests in threads)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Value, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Value) -> str | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
            return hit

    def put(self, key: Value, value: str) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


_memo = _Memo(CACHE_SIZE)


def read_values(values: Iterable[Value]) -> dict[Value, str]:
    """The stored form of each value; InvalidQuery naming the first one that cannot be read."""
    out: dict[Value, str] = {}
    todo: list[Value] = []
    for v in dict.fromkeys(values):
        if v.field not in NORMALIZED_FIELDS:
            raise ValueError(f"{v.field} is not normalized by ingestion")
        hit = _memo.get(v) if v.field != "created_date" or not _stored_date(v.text) else v.text
        if hit is not None:
            out[v] = hit
        else:
            if _MEMO_ONLY.get():
                raise RulesNeeded(v.field)
            if v.field == "phone":
                _check_phone(v)
            todo.append(v)
    if todo:
        for v, stored in zip(todo, _clean(todo), strict=True):
            if stored is None:
                raise InvalidQuery(_unreadable(v))
            _memo.put(v, stored)
            out[v] = stored
    return out


def _unreadable(v: Value) -> str:
    if v.field == "created_date" and _is_iso_date(v.text.strip()):
        # a real date the records cannot hold (ingestion drops it too): say so, not "cannot read"
        return f"created_date: date out of range {vocab.DATE_RANGE}"
    return (f"{v.field}: cannot read {v.text!r} as a {v.field.replace('_', ' ')}; "
            f"{_CLOSED[v.field]}")


def _stored_date(text: str) -> bool:
    """True when `text` is a date exactly as ingestion stores it (clean() reads it as itself)."""
    return _is_iso_date(text) and vocab.DATE_MIN_YEAR <= int(text[:4]) <= vocab.DATE_MAX_YEAR


def _is_iso_date(text: str) -> bool:
    try:
        return re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) is not None \
            and date.fromisoformat(text) is not None
    except ValueError:
        return False


def _clean(values: list[Value]) -> list[str | None]:
    """Run the ingestion rules on one frame holding every value (one row each)."""
    columns: dict[str, list[str | None]] = {f: [None] * len(values) for f in SOURCE_FIELDS}
    for i, v in enumerate(values):
        columns[v.field][i] = v.text
        if v.field == "phone":
            columns["country"][i] = v.country
    frame = pl.DataFrame(columns, schema=dict.fromkeys(SOURCE_FIELDS, pl.String))
    cleaned = clean(frame)
    warnings = cleaned.get_column(WARNINGS).to_list()
    result: list[str | None] = []
    for i, v in enumerate(values):
        stored = cleaned.get_column(v.field)[i]
        if v.field == "status" and any(w.startswith("status:") for w in warnings[i]):
            stored = None  # ingestion would keep "unknown" and a warning: a query cannot guess
        elif stored is None and v.field not in _CLOSED:
            stored = ""  # free text that ingestion reads as empty ("N/A") is stored as ""
        result.append(None if stored is None else str(stored))
    return result


def _check_phone(v: Value) -> None:
    """A phone filter must look like a number (phonenumbers' own test), not words."""
    bare = _EXTENSION.sub("", v.text)
    problem = None
    if _LETTER.search(bare):
        problem = "it contains letters"
    else:
        try:
            phonenumbers.parse(bare, v.country)
        except phonenumbers.NumberParseException as exc:
            if exc.error_type == phonenumbers.NumberParseException.NOT_A_NUMBER:
                problem = "it is not a phone number"
    if problem:
        raise InvalidQuery(f"phone: cannot read {v.text!r} as a phone number ({problem}); "
                           f"{_CLOSED['phone']}")


def pattern_value(field: str, text: str) -> str:
    """A contains/prefix fragment: matched case-insensitively, so only spacing is normalized
    (and phone punctuation, which ingestion drops)."""
    text = _SPACES.sub(" ", text).strip()
    if field == "phone":
        text = _PHONE_FORMATTING.sub("", text)
    if field == "email":
        text = text.lower().removeprefix("mailto:")
    return text


READ_OPS = frozenset({"eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte"})
LIST_OPS = frozenset({"in", "not_in"})
WIDEN = {"eq": "in", "ne": "not_in"}  # a phone read in several countries of the request


def read_conditions(conds: list[tuple[str, str, Any]]) -> list[tuple[str, str, Any]]:
    """(field, operator, value) as sent -> as stored, in one pass of the ingestion rules.

    Values of normalized fields are already checked to be strings. A phone is read in each
    country the request's country filter names (eq/in), or with none."""
    countries: list[str | None] = [
        t for f, op, val in conds if f == "country" and op in ("eq", "in") for t in _items(val)
    ] or [None]
    wanted: dict[int, list[Value]] = {}
    for i, (f, op, val) in enumerate(conds):
        if f in NORMALIZED_FIELDS and op in READ_OPS:
            context = countries if f == "phone" else [None]
            wanted[i] = [Value(f, t, c) for t in _items(val) for c in context]
    stored = read_values(v for vs in wanted.values() for v in vs)
    out: list[tuple[str, str, Any]] = []
    for i, (f, op, val) in enumerate(conds):
        if i in wanted:
            vals = list(dict.fromkeys(stored[v] for v in wanted[i]))
            if op in LIST_OPS:
                out.append((f, op, vals))
            elif len(vals) == 1:
                out.append((f, op, vals[0]))
            else:
                out.append((f, WIDEN[op], vals))
        elif f in NORMALIZED_FIELDS and op in ("contains", "prefix"):
            out.append((f, op, pattern_value(f, val)))
        else:
            out.append((f, op, val))
    return out


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def warm_up() -> None:
    """Pay the rules' first-call cost (imports, vocabulary tables) before the first request."""
    read_values([Value("country", "US"), Value("status", "active"),
                 Value("created_date", "2024-01-31"), Value("phone", "+1 415 555 0100")])
