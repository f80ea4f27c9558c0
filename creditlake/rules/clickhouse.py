"""Rules -> ClickHouse SQL: the third compiler next to polars.py and spark.py, generated from the
same rule data (vocab.py tables and patterns, phones.py numbering plans, identity.py for
record_hash, validation.py's checks and scored fields), so cleaning, validation findings,
quality score and the reject decision run inside the engine (chDB or a server).

`normalize_select(source)` is one SELECT over a table with the landed columns (source_file,
source_row, the SOURCE_FIELDS as text, metadata, plus `seq`) that returns the stage table's
columns (seq + LOADED_FIELDS), `_fatal` and, for fatal rows, `raw_row`.

Regex dialect: Polars uses Rust regex, where \\s and \\d are Unicode classes; ClickHouse uses
RE2 (UTF-8), where they are ASCII. `re2()` rewrites them to the Unicode sets. Dates: chrono's
strptime (Polars) is emulated by one anchored regex per format (numeric fields skip leading
whitespace, a space in the format matches any run of whitespace, month names are case-
insensitive, trailing whitespace is allowed) plus a calendar check; numeric fields without a
separator between them (%Y%m%d) take their full width, as chrono's greedy scan does. Formats
with other directives raise UnsupportedRule (the caller falls back to the Polars backend).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from creditlake.rules import phones, vocab
from creditlake.rules.identity import clickhouse_hash_sql
from creditlake.rules.validation import COLUMN_CHECKS, IDENTITY_MESSAGE, SCORED_FIELDS
from creditlake.rules.vocab import FREE_TEXT
from creditlake.schema import SOURCE_FIELDS


class UnsupportedRule(ValueError):
    """A rule (e.g. a per-source date format) this compiler cannot express in SQL."""


# Rust regex \s (Unicode White_Space) and \d (Unicode Nd) as RE2 classes.
_WS = r"\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"
_CLASSES = {"s": (f"[{_WS}]", _WS), "d": (r"\p{Nd}", r"\p{Nd}"),
            "S": (f"[^{_WS}]", None), "D": (r"[^\p{Nd}]", None)}


def re2(pattern: str) -> str:
    """A Rust-regex pattern with the same meaning in RE2 (Unicode \\s \\d \\S \\D)."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt in _CLASSES:
                outside, inside = _CLASSES[nxt]
                if in_class and inside is None:
                    raise UnsupportedRule(f"\\{nxt} inside a character class: {pattern}")
                out.append(inside if in_class else outside)
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class and out and out[-1] != "[":
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


def quote(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def strings(values: Iterable[str]) -> str:
    return "[" + ", ".join(quote(v) for v in values) + "]"


def regex(pattern: str) -> str:
    """A Rust-regex pattern as an RE2 string literal."""
    return quote(re2(pattern))


def lookup(key: str, table: Mapping[str, str]) -> str:
    """table[key], NULL when missing (no table maps to '')."""
    items = sorted(table.items())
    return (f"nullIf(transform({key}, {strings(k for k, _ in items)}, "
            f"{strings(v for _, v in items)}, ''), '')")


WS_RUN = quote(f"[{_WS}]+")
STRIP = quote(f"^[{_WS}]+|[{_WS}]+$")  # Polars str.strip_chars()


def strip(expr: str) -> str:
    return f"replaceRegexpAll({expr}, {STRIP}, '')"


def text(expr: str, collapse: bool) -> str:
    """polars._text: trim (collapse inner whitespace of free text); null tokens -> NULL."""
    value = f"replaceRegexpAll({expr}, {WS_RUN}, ' ')" if collapse else expr
    value = strip(value)
    return f"if({value} IN {strings(vocab.NULL_TOKEN_SPELLINGS)}, NULL, {value})"


# ---------------------------------------------------------------- dates

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")
_SHORT = "(?i:" + "|".join(m[:3] for m in _MONTHS) + ")"
_LONG = "(?i:" + "|".join(f"{m[:3]}(?:{m[3:]})?" if len(m) > 3 else m for m in _MONTHS) + ")"
_NUM_WS = f"[{_WS}]*"  # chrono skips whitespace before a number
_DIRECTIVES = {"%Y": ("y", r"\+?(\d{1,4})"), "%m": ("m", r"(\d{1,2})"),
               "%d": ("d", r"(\d{1,2})"), "%y": ("y2", r"(\d{1,2})"),
               "%b": ("mon", f"({_SHORT})"), "%B": ("mon", f"({_LONG})")}
_FIXED = {"%Y": r"(\d{4})", "%m": r"(\d{2})", "%d": r"(\d{2})"}


def date_regex(fmt: str) -> tuple[str, list[str]]:
    """An anchored RE2 pattern for strptime format `fmt` and the field of each group."""
    adjacent = re.search(r"%[Ymd]%[Ymd]", fmt) is not None
    out, fields, i = "^", [], 0
    while i < len(fmt):
        tok = fmt[i:i + 2]
        if tok in _DIRECTIVES:
            field, pat = _DIRECTIVES[tok]
            if adjacent and tok in _FIXED and (tok == "%Y" or fmt[i + 2:i + 3] == "%"):
                pat = _FIXED[tok]  # chrono is greedy: a field followed by one takes its max
            after_number = i >= 2 and fmt[i - 2:i] in _FIXED
            numeric = field in ("y", "m", "d", "y2")
            # (no whitespace inside a run of adjacent numbers: _fields cuts one token)
            out += (_NUM_WS if numeric and not after_number else "") + pat
            fields.append(field)
            i += 2
        elif fmt[i] == "%":
            raise UnsupportedRule(f"date format directive {tok!r} has no SQL rule")
        elif fmt[i] == " ":
            out += f"[{_WS}]*"
            i += 1
        else:
            out += re.escape(fmt[i])
            i += 1
    return re2(out + f"[{_WS}]*$"), fields


DATE_TOKENS = quote(re2(r"\d+|\p{L}+"))  # digit runs and letter runs, in order
_WIDTH = {"%Y": 4, "%m": 2, "%d": 2}
_NUMERIC = ("y", "m", "d", "y2")


def _fields(fmt: str) -> tuple[dict[str, str], int]:
    """Field -> SQL for a value that matched date_regex(fmt), over `_date_tokens` (its digit
    and letter runs), `_dn` (the runs as numbers) and `_dmon` (as month numbers); and the
    number of runs such a value has. Separated fields are one run each; a run of adjacent
    numeric fields (%Y%m%d) is one run cut at the fields' widths (the last takes the rest)."""
    items = re.findall(r"%[A-Za-z]|[^%]+", fmt)
    out: dict[str, str] = {}
    token, offset, prev_numeric = 0, 1, False
    for j, item in enumerate(items):
        if not item.startswith("%"):
            prev_numeric = False
            continue
        field = _DIRECTIVES[item][0]
        numeric = field in _NUMERIC
        if numeric and prev_numeric:
            offset += _WIDTH[items[j - 1]]
        else:
            token, offset = token + 1, 1
        nxt = items[j + 1] if j + 1 < len(items) else ""
        cut_next = numeric and nxt in _WIDTH
        if cut_next or (numeric and prev_numeric):
            length = f", {_WIDTH[item]}" if cut_next else ""
            out[field] = f"toUInt32OrZero(substring(_date_tokens[{token}], {offset}{length}))"
        else:
            out[field] = f"_dmon[{token}]" if field == "mon" else f"_dn[{token}]"
        prev_numeric = numeric
    return out, token


def _ymd(fmt: str) -> str:
    """yyyymmdd (UInt32) of a value that matched date_regex(fmt); 0 for a date the calendar
    lacks (Feb 30, month 13)."""
    g, _ = _fields(fmt)
    y = f"if({g['y2']} < 69, 2000 + {g['y2']}, 1900 + {g['y2']})" if "y2" in g else g["y"]
    m = g.get("mon") or g["m"]
    d = g["d"]
    leap = f"(({y}) % 4 = 0 AND (({y}) % 100 != 0 OR ({y}) % 400 = 0))"
    dim = f"multiIf({m} = 2, if({leap}, 29, 28), {m} IN (4, 6, 9, 11), 30, 31)"
    return (f"if({m} BETWEEN 1 AND 12 AND {d} BETWEEN 1 AND {dim}, "
            f"toUInt32(({y}) * 10000 + {m} * 100 + {d}), 0)")


def _prefilter(fmt: str, expr: str) -> str:
    """A cheap test every value matching date_regex(fmt) passes: its number of runs and the
    format's literal characters (so most values try one or two regexes, not all)."""
    _, runs = _fields(fmt)
    tests = [f"length(_date_tokens) = {runs}"]
    literals = sorted(set(re.sub(r"%[A-Za-z]", "", fmt)) - {" "})
    tests += [f"position({expr}, {quote(ch)}) > 0" for ch in literals]
    return " AND ".join(tests)


def date_layers(expr: str, date_format: str | None = None) -> list[dict[str, str]]:
    """polars.parse_dates (after its ISO-datetime cut) as yyyymmdd in column `_ymd` (0: none):
    each format's candidate is its own column (a cheap prefilter before its regex, so a value
    costs one match per format of its shape), and the first non-zero one wins. No candidate
    refers to another: ClickHouse copies an expression into each place that uses it, so a
    chain of formats would grow exponentially. `expr` is a column."""
    months = strings(x[:3] for x in _MONTHS)
    candidates = {}
    for i, fmt in enumerate((date_format,) if date_format else vocab.DATE_FORMATS):
        pattern, _ = date_regex(fmt)
        candidates[f"_dc{i}"] = (f"if({_prefilter(fmt, expr)} AND match({expr}, "
                                 f"{quote(pattern)}), {_ymd(fmt)}, 0)")
    return [{"_date_tokens": f"extractAll({expr}, {DATE_TOKENS})"},
            {"_dn": "arrayMap(t -> toUInt32OrZero(t), _date_tokens)",
             "_dmon": f"arrayMap(t -> indexOf({months}, lowerUTF8(substringUTF8(t, 1, 3))), "
                      "_date_tokens)"},
            candidates,
            {"_ymd": f"arrayFirst(x -> x != 0, [{', '.join(candidates)}])"}]


def date_from_ymd(ymd: str = "_ymd") -> str:
    """The kept date: years outside DATE_MIN_YEAR..DATE_MAX_YEAR are dropped."""
    return (f"if(intDiv({ymd}, 10000) BETWEEN {vocab.DATE_MIN_YEAR} AND {vocab.DATE_MAX_YEAR}, "
            f"makeDate32(intDiv({ymd}, 10000), intDiv({ymd}, 100) % 100, {ymd} % 100), NULL)")


# ---------------------------------------------------------------- clean + validate

RAW = "r_"  # landed (uncleaned) copies of the SOURCE_FIELDS, for rejected rows' raw_row


def _warn(cond: str, *parts: str) -> str:
    return f"if({cond}, concat({', '.join(parts)}), NULL)"


def clean_select(source: str, *, default_country: str | None = None,
                 date_format: str | None = None) -> str:
    """polars.clean as SQL: columns seq, source_file, source_row, metadata, the cleaned
    SOURCE_FIELDS (created_date as Date32), `_warnings` and the r_* landed copies."""
    countries = vocab.country_table()
    strip_key = regex(vocab.COUNTRY_KEY_STRIP)
    texts = ", ".join(f"{text(f, f in FREE_TEXT)} AS t_{f}, {f} AS {RAW}{f}"
                      for f in SOURCE_FIELDS)
    layer1 = f"SELECT seq, source_file, source_row, metadata, {texts} FROM {source}"
    iso = lookup(f"replaceRegexpAll(lowerUTF8(t_country), {strip_key}, '')", countries)
    if default_country:
        iso = f"if(t_country IS NULL, {quote(default_country)}, {iso})"
    email = "lowerUTF8(t_email)"
    email = f"if(startsWith({email}, 'mailto:'), substringUTF8({email}, 8), {email})"
    chars = re.escape(vocab.EMAIL_STRIP_CHARS)
    email = f"replaceRegexpAll({email}, {quote(f'^[{chars}]+|[{chars}]+$')}, '')"
    raw_phone = (f"replaceRegexpOne(replaceRegexpOne(t_phone, "
                 f"{regex('(?i)' + vocab.PHONE_EXTENSION_PATTERN)}, ''), "
                 f"{regex(vocab.PHONE_BRACKETED_TRUNK)}, '')")
    regions = vocab.calling_code_regions()
    prefix_region = "coalesce(" + ", ".join(
        lookup(f"substringUTF8(_intl_digits, 1, {n})", regions) for n in (3, 2, 1)) + ")"
    address_country = lookup(
        f"replaceRegexpAll(lowerUTF8(splitByChar(',', t_address)[-1]), {strip_key}, '')",
        countries)
    d = "_digits"
    national = f"if(_keep0, {d}, if(startsWith({d}, '0'), substring({d}, 2), {d}))"
    e164 = (f"multiIf(_intl, concat('+', _intl_digits), "
            f"_cc = '1' AND _dlen = 11 AND startsWith({d}, '1'), concat('+', {d}), "
            f"_cc IS NOT NULL AND _dlen > 10 AND startsWith({d}, _cc), concat('+', {d}), "
            f"_cc IS NOT NULL, concat('+', _cc, {national}), NULL)")
    valid_phone = quote(phones.valid_e164_pattern())
    known_status = strings(vocab.STATUS_SYNONYMS)
    warnings = ", ".join([
        _warn("t_country IS NOT NULL AND _iso IS NULL",
              "'country: unrecognized \\''", "t_country", "'\\''"),
        _warn("_inferred IS NOT NULL", "'country: inferred '", "_iso", "' from phone prefix'"),
        _warn("_from_address IS NOT NULL", "'country: inferred '", "_iso", "' from address'"),
        _warn("t_created_date IS NOT NULL AND _ymd = 0",
              quote(vocab.DATE_UNPARSEABLE[0]), "t_created_date", quote(vocab.DATE_UNPARSEABLE[1])),
        _warn("_ymd != 0 AND _created IS NULL",
              quote(vocab.DATE_OUT_OF_RANGE[0]), "t_created_date",
              quote(vocab.DATE_OUT_OF_RANGE[1])),
        _warn(f"_status_key IS NOT NULL AND _status_key NOT IN {known_status}",
              "'status: unrecognized \\''", "_status_key", "'\\''"),
    ])
    layers = [
        {"_iso0": iso, "_email": email, "_raw_phone": raw_phone,
         "_status_key": "lowerUTF8(t_status)",
         "_date_text": f"replaceRegexpOne(t_created_date, "
                       f"{regex(vocab.ISO_DATETIME_PATTERN)}, '\\\\1')"},
        {"_digits": f"replaceRegexpAll(_raw_phone, {regex(chr(92) + 'D')}, '')",
         "_plus": f"startsWith({strip('_raw_phone')}, '+')",
         "_status": f"ifNull({lookup('_status_key', vocab.STATUS_SYNONYMS)}, 'unknown')"},
        *date_layers("_date_text", date_format),
        # The stage and records columns are Date (1970..2149): a kept date outside that
        # range is dropped like an unparseable one (the Polars path cannot insert it at all)
        {"_created": f"if(({date_from_ymd()} AS _kept) BETWEEN toDate32('1970-01-01') "
                     "AND toDate32('2149-06-06'), _kept, NULL)"},
        {"_intl": "_plus OR startsWith(_digits, '00')",
         "_intl_digits": "if(_plus, _digits, substringUTF8(_digits, 3))",
         "_dlen": "lengthUTF8(_digits)"},
        {"_inferred": f"if(_iso0 IS NULL AND t_country IS NULL AND _intl, {prefix_region}, "
                      "NULL)"},
        {"_from_address": "if(_iso0 IS NULL AND t_country IS NULL AND position(t_address, ',') "
                          f"> 0 AND _inferred IS NULL, {address_country}, NULL)"},
        {"_iso": "coalesce(_iso0, _inferred, _from_address)"},
        {"_cc": lookup("_iso", vocab.calling_codes()),
         "_keep0": f"_iso IN {strings(sorted(vocab.KEEP_LEADING_ZERO))}"},
        {"_e164": e164},
        {"_phone": f"multiIf(_digits IS NULL OR _dlen = 0, NULL, match(_e164, {valid_phone}), "
                   "_e164, _digits)"},
    ]
    # One subquery per layer: each reads the previous layer's columns, so no expression is
    # inlined into the next (ClickHouse expands aliases; nested aliases over the vocabulary
    # literals made analysis take seconds).
    sql = layer1
    defined: set[str] = set()
    for layer in layers:
        new = {n: e for n, e in layer.items() if n not in defined}
        again = {n: e for n, e in layer.items() if n in defined}  # SELECT * REPLACE
        head = "*" + (" REPLACE (" + ", ".join(f"{e} AS {n}" for n, e in again.items()) + ")"
                      if again else "")
        exprs = "".join(f",\n    {e} AS {n}" for n, e in new.items())
        sql = f"SELECT {head}{exprs}\nFROM ({sql})"
        defined |= set(layer)
    return f"""
SELECT seq, source_file, source_row, metadata, {', '.join(RAW + f for f in SOURCE_FIELDS)},
    t_user_id AS user_id, _email AS email, t_name AS name, _phone AS phone,
    t_address AS address, t_city AS city, _iso AS country, _created AS created_date,
    _status AS status,
    CAST(arrayFilter(x -> x IS NOT NULL, [{warnings}]) AS Array(String)) AS _warnings
FROM ({sql})"""


def _passes(kind: str, arg: str | tuple[str, ...], col: str) -> str:
    if kind == "regex":
        assert isinstance(arg, str)
        return f"match({col}, {regex(arg)})"
    return f"{col} IN {strings(arg)}"


def validate_select(cleaned: str) -> str:
    """validation.validate as SQL over clean_select: adds validation_errors (column findings,
    identity, then the cleaning warnings), data_quality_score (Float32) and _fatal."""
    failed = {col: f"({col} IS NOT NULL AND NOT {_passes(kind, arg, col)})"
              for col, _, kind, arg in COLUMN_CHECKS}
    messages = [f"if({failed[col]}, concat({quote(f'{col}: {name} failed for ')}, '\\'', "
                f"{col}, '\\''), NULL)" for col, name, _, _ in COLUMN_CHECKS]
    email_ok = f"ifNull(match(email, {regex(vocab.EMAIL_PATTERN)}), 0)"
    phone_ok = f"ifNull(lengthUTF8(replaceRegexpAll(phone, {regex(chr(92) + 'D')}, '')) >= 7, 0)"
    present = [f"({f} IS NOT NULL"
               + (f" AND {f} != 'unknown'" if f == "status" else "")
               + (f" AND NOT {failed[f]}" if f in failed else "") + ")"
               for f in SCORED_FIELDS]
    return f"""
SELECT *,
    NOT ({email_ok} OR {phone_ok} OR user_id IS NOT NULL) AS _fatal,
    arrayConcat(
        CAST(arrayFilter(x -> x IS NOT NULL, [{', '.join(messages)},
             if(_fatal, {quote(IDENTITY_MESSAGE)}, NULL)]) AS Array(String)),
        _warnings) AS validation_errors,
    toFloat32(({' + '.join(present)}) / {len(SCORED_FIELDS)}) AS data_quality_score
FROM ({cleaned})"""


RAW_ROW_SETTINGS = {"output_format_json_escape_forward_slashes": 0,
                    "output_format_json_named_tuples_as_objects": 1}


def raw_row() -> str:
    """normalize.polars.rejected_rows' raw_row: the landed fields as one JSON object (nulls
    kept) with the metadata object spliced in. Needs RAW_ROW_SETTINGS."""
    fields = ", ".join(f"{RAW}{f}" for f in SOURCE_FIELDS)
    types = ", ".join(f"{f} Nullable(String)" for f in SOURCE_FIELDS)
    body = f"toJSONString(CAST(tuple({fields}), 'Tuple({types})'))"
    return (f"concat(substring({body}, 1, length({body}) - 1), ',\"metadata\":', metadata, "
            "'}')")


def normalize_select(source: str, *, default_country: str | None = None,
                     date_format: str | None = None) -> str:
    """clean + validate + record_hash over `source`: seq, the stage table's LOADED_FIELDS,
    record_hash, _fatal and raw_row (rejected rows only; '' otherwise)."""
    validated = validate_select(clean_select(source, default_country=default_country,
                                             date_format=date_format))
    return f"""
SELECT seq, source_file, source_row, user_id, email, name, phone, address, city, country,
    toNullable(toDate(created_date)) AS created_date, status, metadata, data_quality_score,
    validation_errors,
    {clickhouse_hash_sql()} AS record_hash, _fatal, if(_fatal, {raw_row()}, '') AS raw_row
FROM ({validated})"""
