"""The field dictionary: what a customer can filter, sort and select, and how values are read.

Built from the query whitelist (fields.FIELDS), the master schema's descriptions and the
ingestion vocabularies, so `GET /api/v1/fields` and the OpenAPI `filters` schema cannot drift
from what the compiler accepts.
"""

from __future__ import annotations

import functools
from typing import Any

import pycountry

from creditlake.query.fields import FIELDS, Field
from creditlake.rules import vocab
from creditlake.schema import COLUMN_BY_NAME, STATUSES

# JSON type of one value per field kind (dates are strings in any format ingestion reads).
VALUE_TYPES = {"text": "string", "uuid": "string", "date": "string", "datetime": "string",
               "number": "number", "array": "string"}
EXAMPLES: dict[str, Any] = {
    "id": "0b0e2f52-4a4e-4f7c-9a57-2f0d7c3c1e11", "source_file": "crm_export.csv",
    "record_hash": "5d41402abc4b2a76b9719d911017c592", "ingested_at": "2026-01-01T00:00:00Z",
    "user_id": "C-10042", "email": "ann.lee@example.com", "name": "Ann Lee",
    "phone": "+14155550123", "address": "12 Main St", "city": "Springfield", "country": "US",
    "created_date": "2024-01-31", "status": "active", "metadata": "loyalty",
    "data_quality_score": 0.8, "validation_errors": "phone: not a valid number",
}
# How a filter value is read (the same rules ingestion applies to the stored value).
READING: dict[str, str] = {
    "country": "Names, ISO 3166 alpha-2/alpha-3 codes and common spellings ('USA', 'United "
               "States', 'us', 'Deutschland') are read as the ISO alpha-2 code ingestion stores.",
    "status": "Any case and the synonyms ingestion maps ('Active', 'enabled', 'BANNED').",
    "email": "Case, a 'mailto:' prefix and surrounding spaces, quotes or brackets are ignored.",
    "phone": "Read to E.164 like ingestion: an international prefix ('+44 …', '0044 …') or, for "
             "a national number, the country filter of the same request ('020 7946 0958' with "
             "country GB is +442079460958). Spaces, dashes, dots and brackets are ignored; "
             "letters are an error.",
    "created_date": "Every date format ingestion reads: YYYY-MM-DD, MM/DD/YYYY, DD.MM.YYYY, "
                    "'15 Jan 2024', ISO date-times (the date part), …",
    "name": "Inner whitespace collapsed, ends trimmed.",
    "city": "Inner whitespace collapsed, ends trimmed.",
    "address": "Inner whitespace collapsed, ends trimmed.",
    "user_id": "Ends trimmed.",
}
OPERATORS: dict[str, str] = {
    "eq": "equal (also: a plain value)", "ne": "not equal",
    "in": "any of a list (also: a plain list)", "not_in": "none of a list",
    "gt": "greater than", "gte": "greater or equal", "lt": "less than", "lte": "less or equal",
    "contains": "substring, case-insensitive", "prefix": "starts with, case-insensitive",
    "has": "the array holds this value", "has_any": "the array holds any of these values",
    "is_null": "true: no value; false: has a value",
}


@functools.cache
def countries() -> dict[str, str]:
    """ISO alpha-2 -> English name, for every code ingestion can store."""
    codes = set(vocab.country_table().values())
    return {c: getattr(pycountry.countries.get(alpha_2=c), "name", c) for c in sorted(codes)}


def status_synonyms() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {s: [] for s in STATUSES}
    for spelling, status in vocab.STATUS_SYNONYMS.items():
        if spelling and spelling != status:
            out[status].append(spelling)
    return out


def closed_values(name: str) -> list[str] | None:
    if name == "country":
        return list(countries())
    if name == "status":
        return list(STATUSES)
    return None


def describe(f: Field) -> dict[str, Any]:
    """One entry of GET /api/v1/fields."""
    entry: dict[str, Any] = {
        "name": f.name, "type": f.kind, "description": COLUMN_BY_NAME[f.name].description,
        "operators": sorted(f.ops), "sortable": f.sortable, "nullable": f.nullable,
        "example": EXAMPLES.get(f.name), "values": closed_values(f.name),
        "reading": READING.get(f.name),
    }
    if f.name == "country":
        entry["value_names"] = countries()
    if f.name == "status":
        entry["synonyms"] = status_synonyms()
    return entry


def dictionary() -> list[dict[str, Any]]:
    return [describe(f) for f in FIELDS.values()]


def _value_schema(f: Field) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": VALUE_TYPES[f.kind]}
    if f.kind == "datetime":
        schema["format"] = "date-time"
    if f.kind == "uuid":
        schema["format"] = "uuid"
    return schema


def filter_schema(f: Field) -> dict[str, Any]:
    """JSON schema of one filter: a value, a list of values, or {operator: value}."""
    value = _value_schema(f)
    values = {"type": "array", "items": value, "minItems": 1}
    ops: dict[str, Any] = {}
    for op in sorted(f.ops):
        ops[op] = ({"type": "boolean"} if op == "is_null"
                   else values if op in ("in", "not_in", "has_any") else value)
    operators = {"type": "object", "properties": ops, "additionalProperties": False,
                 "minProperties": 1}
    array = f.kind == "array"
    shapes = ([value] if ("has" if array else "eq") in f.ops else []) + (
        [values] if ("has_any" if array else "in") in f.ops else []) + [operators]
    example = EXAMPLES.get(f.name)
    description = COLUMN_BY_NAME[f.name].description
    if f.name in READING:
        description += ". " + READING[f.name]
    return {"anyOf": shapes, "description": description,
            **({"examples": [example]} if example is not None else {})}


def filters_schema() -> dict[str, Any]:
    """`properties` / `additionalProperties` of the `filters` object in the OpenAPI document."""
    return {"properties": {name: filter_schema(f) for name, f in FIELDS.items()},
            "additionalProperties": False}
