"""Compile a validated QueryRequest into parameterized ClickHouse SQL over `{db}.records`.

Only whitelisted identifiers (fields.FIELDS) and operators reach the SQL text; every value is a
bound `{pN:Type}` parameter. Anything else raises InvalidQuery naming the problem.
Ordering is total (sort key, then id) so offset pages and cursor pages are stable; the cursor
carries the last row's key values and a fingerprint of the filters and sort it belongs to.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from creditlake.query.errors import InvalidQuery
from creditlake.query.fields import ALL_OPS, DEFAULT_FIELDS, FIELDS, JSON_COLUMN, SORTABLE, Field
from creditlake.query.model import MAX_LIMIT, MAX_OFFSET, QueryRequest
from creditlake.query.normalize import NORMALIZED_FIELDS, read_conditions

MAX_LIST = 1000
MAX_TEXT = 1000
MAX_NUMBER = 1e15
KEY_PREFIX = "__k"  # hidden cursor-key columns, stripped before data leaves
ROW_COLUMN = "__row"  # the page's rows as the API's JSON objects, rendered by the engine
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:\d{2})?$")


@dataclass
class CompiledQuery:
    sql: str
    count_sql: str  # matches of the filters (total_records)
    params: dict[str, Any]
    count_params: dict[str, Any]
    page_count_sql: str  # matches of filters + cursor (what this page can still return)
    page_count_params: dict[str, Any]
    fields: tuple[str, ...]
    limit: int
    offset: int
    page: int
    key_columns: tuple[str, ...]
    key_types: tuple[str, ...]
    fingerprint: str  # filters + sort: what a cursor is bound to
    cache_key: str  # everything that determines the answer
    uses_cursor: bool = False
    normalized: dict[str, Any] = field(default_factory=dict)
    count_key: str = ""  # what total_records depends on: database + filters
    filters_applied: dict[str, Any] = field(default_factory=dict)  # values as searched


class _Params:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, ch_type: str, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{ch_type}}}"


def compile_query(req: QueryRequest, database: str, *, source: str | None = None,
                  extra_fields: tuple[str, ...] = (), variant: str = "") -> CompiledQuery:
    """SQL for one validated request. `source` replaces `{database}.records` in FROM (a
    subquery with the master columns, e.g. golden records); `extra_fields` are returned as
    they are after the requested fields; `variant` keeps cache keys of other sources apart."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
        raise ValueError(f"bad database name {database!r}")
    _check_int("limit", req.limit, 1, MAX_LIMIT)
    _check_int("offset", req.offset, 0, MAX_OFFSET)
    fields = _fields(req.fields)
    sort_field, order = _sort(req)
    params = _Params()
    where, normalized_filters, filters_applied = _filters(req.filters, params)
    count_params = dict(params.values)
    count_where = list(where)

    keys = _key_exprs(FIELDS[sort_field])
    key_types = _key_types(FIELDS[sort_field])
    fingerprint = _fingerprint(normalized_filters, sort_field, order)
    page = req.offset // req.limit + 1
    if req.cursor is not None:
        if req.offset:
            raise InvalidQuery("Use either cursor or offset, not both")
        values, page = decode_cursor(req.cursor, fingerprint, key_types)
        placeholders = [params.add(t, v) for t, v in zip(key_types, values, strict=True)]
        cmp = ">" if order == "asc" else "<"
        where.append(f"({', '.join(keys)}) {cmp} ({', '.join(placeholders)})")

    table = source or f"{database}.records"
    select = [f"{row_json_sql(fields, extra_fields)} AS {ROW_COLUMN}"]
    select += [f"toString({k}) AS {KEY_PREFIX}{i}" for i, k in enumerate(keys)]
    direction = "ASC" if order == "asc" else "DESC"
    order_by = ", ".join(f"{k} {direction}" for k in keys)
    where_sql = f" WHERE {' AND '.join(where)}" if where else ""
    page_count_params = dict(params.values)
    # limit + 1 rows: the extra row only tells whether a next page exists.
    lim = params.add("UInt32", req.limit + 1)
    sql = f"SELECT {', '.join(select)} FROM {table}{where_sql} ORDER BY {order_by} LIMIT {lim}"
    if req.offset:
        sql += f" OFFSET {params.add('UInt32', req.offset)}"
    count_where_sql = f" WHERE {' AND '.join(count_where)}" if count_where else ""
    count_sql = f"SELECT count() FROM {table}{count_where_sql}"

    normalized = {"filters": normalized_filters, "fields": list(fields),
                  "sort": {"field": sort_field, "order": order}, "limit": req.limit,
                  "offset": req.offset, "cursor": req.cursor}
    cache_key = hashlib.sha256(
        json.dumps([database, normalized], sort_keys=True, default=str).encode()).hexdigest()
    count_key = hashlib.sha256(
        json.dumps([database, normalized_filters], sort_keys=True, default=str).encode()
    ).hexdigest()
    if variant:  # cached answers and totals of different sources must never mix
        cache_key, count_key = f"{variant}:{cache_key}", f"{variant}:{count_key}"
    return CompiledQuery(sql, count_sql, params.values, count_params,
                         f"SELECT count() FROM {table}{where_sql}", page_count_params,
                         (*fields, *extra_fields), req.limit,
                         req.offset, page, keys, key_types, fingerprint, cache_key,
                         req.cursor is not None, normalized, count_key, filters_applied)


def row_json_sql(fields: tuple[str, ...], extra_fields: tuple[str, ...] = ()) -> str:
    """One row as the API's JSON object, written by the engine (no Python per row or field):
    the fields in order, then the extra fields as stored, then `metadata` (JSON object text)
    spliced in as an object ({} when the text does not look like one). Names are whitelisted
    identifiers; values go through toJSONString (NULL -> null)."""
    exprs = [(f, _json_value(FIELDS[f].select_sql, _is_float(FIELDS[f])))
             for f in fields if f != JSON_COLUMN]
    exprs += [(f, _json_value(f, None)) for f in extra_fields]
    parts = [f"'\"{name}\":', {value}" for name, value in exprs]
    if JSON_COLUMN in fields:
        raw = f"ifNull({FIELDS[JSON_COLUMN].select_sql}, '')"
        parts.append(f"'\"{JSON_COLUMN}\":', if(startsWith({raw}, '{{') AND endsWith({raw}, "
                     f"'}}'), {raw}, '{{}}')")
    return "concat('{', " + ", ',', ".join(parts) + ", '}')"


def _is_float(f: Field) -> bool:
    return f.kind == "number" and f.key_type.startswith("Float")


def _json_value(expr: str, is_float: bool | None) -> str:
    """JSON text of a value; a whole float keeps its ".0" (1.0, not 1: a float to every client).
    is_float None: decided by the expression's type (constant, folded by the engine)."""
    text = f"ifNull(toJSONString({expr}), 'null')"
    as_float = f"if(match({text}, '^-?[0-9]+$'), concat({text}, '.0'), {text})"
    if is_float is None:
        return f"if(toTypeName({expr}) LIKE '%Float%', {as_float}, {text})"
    return as_float if is_float else text


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidQuery(f"{name} must be an integer between {lo} and {hi}")


def _fields(requested: list[str] | None) -> tuple[str, ...]:
    if requested is None:
        return DEFAULT_FIELDS
    if not isinstance(requested, list) or not requested:
        raise InvalidQuery("fields must be a non-empty list of field names")
    seen: list[str] = []
    for name in requested:
        if not isinstance(name, str) or name not in FIELDS:
            raise InvalidQuery(f"Unknown field in fields: {_show(name)}")
        if name in seen:
            raise InvalidQuery(f"Duplicate field in fields: {name}")
        seen.append(name)
    return tuple(seen)


def _sort(req: QueryRequest) -> tuple[str, str]:
    if req.sort is None:
        return "id", "asc"
    name, order = req.sort.field, req.sort.order
    if name not in FIELDS:
        raise InvalidQuery(f"Unknown sort field: {_show(name)}")
    if name not in SORTABLE:
        raise InvalidQuery(f"Field {name} cannot be sorted")
    if order not in ("asc", "desc"):
        raise InvalidQuery(f"Unknown sort order: {_show(order)} (use asc or desc)")
    return name, order


def _key_exprs(f: Field) -> tuple[str, ...]:
    """ORDER BY expressions: the sort field (NULLs last via isNull) then id as a tie-breaker."""
    if f.name == "id":
        return ("id",)
    if f.nullable:
        # assumeNotNull: the type's default for NULL rows, which isNull() already orders last
        return (f"isNull({f.name})", f"assumeNotNull({f.name})", "id")
    return (f.name, "id")


def _key_types(f: Field) -> tuple[str, ...]:
    if f.name == "id":
        return ("UUID",)
    return (("UInt8", f.key_type, "UUID") if f.nullable else (f.key_type, "UUID"))


def _filters(filters: dict[str, Any] | None, params: _Params
             ) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """WHERE parts, the normalized filters (cache key, cursor binding) and filters_applied (how
    the customer's values were read, in the shape they were written)."""
    if filters is None:
        return [], {}, {}
    if not isinstance(filters, dict):
        raise InvalidQuery("filters must be an object of field -> condition")
    conds: list[tuple[str, str, Any]] = []
    shorthand: set[str] = set()
    for name in sorted(filters):
        if name not in FIELDS:
            raise InvalidQuery(f"Unknown filter field: {_show(name)}")
        f = FIELDS[name]
        cond = filters[name]
        if isinstance(cond, dict):
            if not cond:
                raise InvalidQuery(f"Filter on {name} has no operator")
            ops = cond
        else:
            shorthand.add(name)
            if isinstance(cond, list):
                ops = {"has_any" if f.kind == "array" else "in": cond}
            else:
                ops = {"has" if f.kind == "array" else "eq": cond}
        for op in sorted(ops):
            if op not in f.ops:
                known = op in ALL_OPS
                raise InvalidQuery(
                    f"Operator {_show(op)} is not allowed on field {name}" if known
                    else f"Unknown operator {_show(op)} on field {name}")
            _check_shape(f, op, ops[op])
            conds.append((name, op, ops[op]))
    where: list[str] = []
    normalized: dict[str, Any] = {}
    applied: dict[str, Any] = {}
    for name, op, value in read_conditions(conds):
        sql, norm = _condition(FIELDS[name], op, value, params)
        where.append(sql)
        normalized.setdefault(name, {})[op] = norm
        if name in shorthand:
            applied.setdefault(name, []).extend(norm if isinstance(norm, list) else [norm])
        else:
            applied.setdefault(name, {})[op] = norm
    return where, normalized, applied


def _check_shape(f: Field, op: str, value: Any) -> None:
    """Before values are read: lists are lists, and what ingestion normalizes is text."""
    if op in ("in", "not_in", "has_any"):
        if not isinstance(value, list) or not value:
            raise InvalidQuery(f"{op} on {f.name} takes a non-empty list")
        if len(value) > MAX_LIST:
            raise InvalidQuery(f"{op} on {f.name} takes at most {MAX_LIST} values")
    if f.name in NORMALIZED_FIELDS and op != "is_null":
        for v in value if isinstance(value, list) else [value]:
            if not isinstance(v, str):
                raise InvalidQuery(f"{op} on {f.name} takes a string, got {_type(v)}")
            if len(v) > MAX_TEXT:
                raise InvalidQuery(f"{op} on {f.name}: value longer than {MAX_TEXT} characters")


def _condition(f: Field, op: str, value: Any, params: _Params) -> tuple[str, Any]:
    col = f.name
    if op == "is_null":
        if not isinstance(value, bool):
            raise InvalidQuery(f"is_null on {col} takes true or false")
        return (f"{col} IS NULL" if value else f"{col} IS NOT NULL"), value
    if op in ("in", "not_in", "has_any"):  # shape checked by _check_shape
        items = [_scalar(f, op, v) for v in value]
        if f.kind == "array":
            return f"hasAny({col}, {params.add('Array(String)', items)})", items
        ch = f"Array({f.param_type})"
        neg = "NOT " if op == "not_in" else ""
        return f"{col} {neg}IN {params.add(ch, items)}", [str(i) for i in items]
    v = _scalar(f, op, value)
    norm = str(v)
    if op == "has":
        return f"has({col}, {params.add('String', v)})", norm
    if op == "contains":
        return f"positionCaseInsensitiveUTF8({col}, {params.add('String', v)}) > 0", norm
    if op == "prefix":  # case-insensitive like contains
        return f"startsWith(lowerUTF8({col}), {params.add('String', v.lower())})", norm
    sym = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
    return f"{col} {sym} {params.add(f.param_type, v)}", norm


def _scalar(f: Field, op: str, value: Any) -> Any:
    """Check one value against the field's kind; returns the value to bind."""
    where = f"{op} on {f.name}"
    if f.kind in ("text", "array"):
        if not isinstance(value, str):
            raise InvalidQuery(f"{where} takes a string, got {_type(value)}")
        if len(value) > MAX_TEXT:
            raise InvalidQuery(f"{where}: value longer than {MAX_TEXT} characters")
        if op in ("contains", "prefix") and not value:
            raise InvalidQuery(f"{where} needs a non-empty string")
        return value
    if f.kind == "uuid":
        if not isinstance(value, str):
            raise InvalidQuery(f"{where} takes a UUID string, got {_type(value)}")
        try:
            return str(uuid.UUID(value))
        except ValueError as exc:
            raise InvalidQuery(f"{where}: not a UUID: {_show(value)}") from exc
    if f.kind == "date":
        if not isinstance(value, str) or not _DATE.match(value):
            raise InvalidQuery(f"{where} takes a date YYYY-MM-DD, got {_show(value)}")
        try:
            d = date.fromisoformat(value)
        except ValueError as exc:
            raise InvalidQuery(f"{where}: invalid date {_show(value)}") from exc
        if not date(1970, 1, 1) <= d <= date(2149, 6, 6):  # ClickHouse Date range
            raise InvalidQuery(f"{where}: date out of range 1970-01-01..2149-06-06")
        return d
    if f.kind == "datetime":
        if not isinstance(value, str) or not _DATETIME.match(value):
            raise InvalidQuery(f"{where} takes an ISO date-time, got {_show(value)}")
        try:
            return _utc_datetime(value)
        except ValueError as exc:
            raise InvalidQuery(f"{where}: {exc}") from exc
    if f.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidQuery(f"{where} takes a number, got {_type(value)}")
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            raise InvalidQuery(f"{where}: number out of range")
        return float(value)
    raise InvalidQuery(f"{where}: unsupported field")  # pragma: no cover


def _utc_datetime(value: str) -> str:
    """ISO date-time -> ClickHouse DateTime64(3, 'UTC') text, inside 1900..2299 (the type's
    range). ValueError otherwise: an offset at the edge of Python's range (year 1 at +14:00)
    cannot even be converted to UTC."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"invalid date-time {_show(value)}") from None
    try:
        if dt.tzinfo is not None:
            dt = dt.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        dt = datetime.min
    if not 1900 <= dt.year <= 2299:
        raise ValueError(f"date-time {_show(value)} out of range 1900-01-01..2299-12-31 (UTC)")
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f")[:23]


def _fingerprint(filters: dict, sort_field: str, order: str) -> str:
    blob = json.dumps([filters, sort_field, order], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def encode_cursor(values: list[str], fingerprint: str, page: int) -> str:
    raw = json.dumps({"k": values, "f": fingerprint, "p": page}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str, key_types: tuple[str, ...]
                  ) -> tuple[list[Any], int]:
    """Validate a cursor from the client: shape, binding to this query, and each key's type."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        values, fp, page = data["k"], data["f"], data["p"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidQuery("Malformed cursor") from exc
    if fp != fingerprint:
        raise InvalidQuery("Cursor does not belong to this query (filters or sort changed)")
    if (not isinstance(values, list) or len(values) != len(key_types)
            or not all(isinstance(v, str) and len(v) <= MAX_TEXT for v in values)
            or isinstance(page, bool) or not isinstance(page, int) or not 1 <= page <= 10**9):
        raise InvalidQuery("Malformed cursor")
    out: list[Any] = []
    for t, v in zip(key_types, values, strict=True):
        out.append(_cursor_value(t, v))
    return out, page + 1


def _cursor_value(ch_type: str, v: str) -> Any:
    try:
        if ch_type == "UUID":
            return str(uuid.UUID(v))
        if ch_type == "UInt8":
            if v not in ("0", "1"):
                raise ValueError(v)
            return int(v)
        if ch_type == "Date":
            return date.fromisoformat(v) if _DATE.match(v) else _bad(v)
        if ch_type.startswith("DateTime64"):
            return _utc_datetime(v)
        if ch_type.startswith("Float") or ch_type.startswith("Int") or ch_type.startswith("UInt"):
            x = float(v)
            if not math.isfinite(x):
                raise ValueError(v)
            return x
        return v
    except ValueError as exc:
        raise InvalidQuery("Malformed cursor") from exc


def _bad(v: str) -> Any:
    raise ValueError(v)


def _show(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _type(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "list",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)
