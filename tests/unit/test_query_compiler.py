"""Query validation and compilation: whitelist, operators, values, cursor; injection attempts
never reach the SQL text (values are bound parameters, identifiers are whitelisted)."""

from __future__ import annotations

import pytest

from creditlake.query import InvalidQuery, compile_query, encode_cursor, parse_request
from creditlake.query.fields import FIELDS

INJECTIONS = [
    "' OR 1=1 --", "US'; DROP TABLE records; --", "1) OR (1=1", "{p99:String}", "\\' OR 1 --",
    "US\" OR \"1\"=\"1", "x` FROM system.tables --", "${sql}",
    "%' UNION SELECT * FROM system.users",
]


def compile_(body: dict):
    return compile_query(parse_request(body), "db1")


def test_compiles_every_operator_to_bound_parameters():
    q = compile_({
        "filters": {
            "country": ["US", "DE"], "status": "active", "email": {"contains": "smith"},
            "name": {"prefix": "Jo"}, "created_date": {"gte": "2024-01-01", "lt": "2024-02-01"},
            "data_quality_score": {"gt": 0.5}, "city": {"not_in": ["Paris"], "ne": "Rome"},
            "validation_errors": {"has": "phone_invalid"},
            "ingested_at": {"gte": "2025-01-01T00:00:00Z"},
            "id": {"ne": "00000000-0000-0000-0000-000000000000"},
        },
        "fields": ["email", "country"], "sort": {"field": "created_date", "order": "desc"},
        "limit": 50, "offset": 100,
    })
    assert "FROM db1.records WHERE" in q.sql and q.page == 3
    for value in ("US", "active", "smith", "Jo", "Paris", "Rome", "phone_invalid"):
        assert value not in q.sql  # only placeholders in the text
    assert "positionCaseInsensitiveUTF8(email, {p" in q.sql
    assert "startsWith(lowerUTF8(name), {p" in q.sql
    assert "country IN {p" in q.sql and "city NOT IN {p" in q.sql
    assert "ORDER BY isNull(created_date) DESC, assumeNotNull(created_date) DESC, id DESC" in q.sql
    assert q.params[next(k for k, v in q.params.items() if v == ["US", "DE"])] == ["US", "DE"]


@pytest.mark.parametrize(("body", "message"), [
    ({"filters": {"bogus": "x"}}, "Unknown filter field: 'bogus'"),
    ({"filters": {"country": {"like": "x"}}}, "Unknown operator 'like' on field country"),
    ({"filters": {"country": {"gt": "x"}}}, "Operator 'gt' is not allowed on field country"),
    ({"filters": {"country": {}}}, "Filter on country has no operator"),
    ({"filters": {"country": 5}}, "eq on country takes a string, got number"),
    ({"filters": {"country": []}}, "in on country takes a non-empty list"),
    ({"filters": {"country": [["US"]]}}, "in on country takes a string, got list"),
    ({"filters": {"created_date": {"gte": "2024-13-01"}}}, "cannot read '2024-13-01' as a"),
    ({"filters": {"created_date": {"gte": "yesterday"}}}, "cannot read 'yesterday' as a"),
    ({"filters": {"country": "Narnia"}}, "country: cannot read 'Narnia' as a country"),
    ({"filters": {"status": "sleepy"}}, "status: cannot read 'sleepy' as a status"),
    ({"filters": {"phone": "call me maybe"}}, "(it contains letters)"),
    ({"filters": {"phone": ["+1 415 555 0100", "+"]}}, "phone: cannot read '+' as a phone number"),
    ({"filters": {"created_date": {"gte": 20240101}}}, "takes a string, got number"),
    ({"filters": {"created_date": {"gte": "1900-01-01"}}}, "date out of range"),
    ({"filters": {"data_quality_score": {"gt": "0.5"}}}, "takes a number, got string"),
    ({"filters": {"data_quality_score": {"gt": True}}}, "takes a number, got boolean"),
    ({"filters": {"data_quality_score": {"gt": 1e300}}}, "number out of range"),
    ({"filters": {"id": "not-a-uuid"}}, "not a UUID"),
    ({"filters": {"email": {"contains": ""}}}, "needs a non-empty string"),
    ({"filters": {"email": "x" * 1001}}, "longer than 1000"),
    ({"filters": {"email": ["a"] * 1001}}, "at most 1000 values"),
    ({"filters": {"created_date": {"is_null": "yes"}}}, "is_null on created_date takes true"),
    ({"filters": {"email": {"is_null": True}}}, "Operator 'is_null' is not allowed"),
    ({"fields": []}, "fields must be a non-empty list"),
    ({"fields": ["email", "password"]}, "Unknown field in fields: 'password'"),
    ({"fields": ["email", "email"]}, "Duplicate field in fields: email"),
    ({"sort": {"field": "nope"}}, "Unknown sort field: 'nope'"),
    ({"sort": {"field": "validation_errors"}}, "cannot be sorted"),
    ({"sort": {"field": "email", "order": "sideways"}}, "sort.order"),
    ({"limit": 0}, "limit"), ({"limit": 10001}, "limit"), ({"offset": -1}, "offset"),
    ({"limit": "10"}, "limit"), ({"unknown_key": 1}, "unknown_key"),
    ({"cursor": "!!!"}, "Malformed cursor"),
    ({"cursor": encode_cursor(["x"], "0" * 16, 1)}, "does not belong to this query"),
])
def test_invalid_queries_name_the_problem(body, message):
    with pytest.raises(InvalidQuery) as err:
        compile_(body)
    assert message in err.value.message


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_through_identifiers_is_rejected(evil):
    for body in ({"filters": {evil: "x"}}, {"fields": ["email", evil]},
                 {"sort": {"field": evil}}, {"filters": {"email": {evil: "x"}}},
                 {"filters": {f"email{evil}": "x"}}):
        with pytest.raises(InvalidQuery):
            compile_(body)


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_through_values_stays_a_parameter(evil):
    text_fields = [n for n, f in FIELDS.items() if f.kind == "text"]
    for name in text_fields:
        for cond in (evil, [evil, "x"], {"contains": evil}, {"prefix": evil}, {"ne": evil}):
            try:
                q = compile_({"filters": {name: cond}})
            except InvalidQuery as exc:  # closed vocabularies: not a country/status/phone
                assert name in ("country", "status", "phone") and name in exc.message
                continue
            assert evil not in q.sql and evil not in q.count_sql
    for name in ("created_date", "data_quality_score", "id", "ingested_at"):
        with pytest.raises(InvalidQuery):
            compile_({"filters": {name: {"eq" if name != "ingested_at" else "gte": evil}}})


def test_cursor_must_match_filters_and_sort():
    a = compile_({"filters": {"country": "US"}, "sort": {"field": "email"}, "limit": 10})
    cur = encode_cursor(["user1@example.com", "00000000-0000-0000-0000-000000000001"],
                        a.fingerprint, 1)
    b = compile_({"filters": {"country": "US"}, "sort": {"field": "email"}, "limit": 10,
                  "cursor": cur})
    assert b.page == 2 and "(email, id) > ({p1:String}, {p2:UUID})" in b.sql
    with pytest.raises(InvalidQuery, match="does not belong"):
        compile_({"filters": {"country": "DE"}, "sort": {"field": "email"}, "cursor": cur})
    with pytest.raises(InvalidQuery, match="either cursor or offset"):
        compile_({"filters": {"country": "US"}, "sort": {"field": "email"}, "cursor": cur,
                  "offset": 10})
    bad = encode_cursor(["x", "' OR 1=1 --"], a.fingerprint, 1)
    with pytest.raises(InvalidQuery, match="Malformed cursor"):
        compile_({"filters": {"country": "US"}, "sort": {"field": "email"}, "cursor": bad})


def test_cache_key_normalizes_equivalent_queries():
    a = compile_({"filters": {"country": "US", "status": ["active"]}, "limit": 10})
    b = compile_({"limit": 10, "filters": {"status": {"in": ["active"]}, "country": {"eq": "US"}}})
    c = compile_({"filters": {"country": "DE", "status": ["active"]}, "limit": 10})
    assert a.cache_key == b.cache_key != c.cache_key
