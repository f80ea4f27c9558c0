"""Filter values are read by the ingestion rules themselves (rules/polars.clean): every spelling
ingestion normalizes is searched as the value ingestion stores; what it cannot read is a 400."""

from __future__ import annotations

import polars as pl
import pytest

from creditlake.query import InvalidQuery, compile_query, parse_request
from creditlake.query.normalize import Value, _clean, _stored_date, read_values
from creditlake.rules.polars import clean
from creditlake.schema import SOURCE_FIELDS


def applied(filters: dict) -> dict:
    return compile_query(parse_request({"filters": filters}), "db").filters_applied


def ingested(**row: str) -> dict:
    """What ingestion stores for one row (the same function, run as ingestion runs it)."""
    frame = pl.DataFrame({f: [row.get(f)] for f in SOURCE_FIELDS},
                         schema=dict.fromkeys(SOURCE_FIELDS, pl.String))
    return clean(frame).to_dicts()[0]


@pytest.mark.parametrize(("field", "spelling", "stored"), [
    ("country", "USA", "US"), ("country", "United States", "US"), ("country", "us", "US"),
    ("country", " U.S.A. ", "US"), ("country", "Deutschland", "DE"), ("country", "GBR", "GB"),
    ("status", "Active", "active"), ("status", "ENABLED", "active"), ("status", "banned",
                                                                     "suspended"),
    ("email", "MAILTO:Ann.Lee@Example.COM ", "ann.lee@example.com"),
    ("email", "<bob@x.org>", "bob@x.org"),
    ("phone", "+44 20 7946 0958", "+442079460958"), ("phone", "0044 20 7946 0958", "+442079460958"),
    ("phone", "+44 608 740 251", "44608740251"),  # not a valid UK number: digits as written
    ("phone", "+1 (415) 555-0100 ext. 7", "+14155550100"),
    ("created_date", "01/15/2020", "2020-01-15"), ("created_date", "15.01.2020", "2020-01-15"),
    ("created_date", "2020-01-15T10:30:00Z", "2020-01-15"),
    ("created_date", "15 Jan 2020", "2020-01-15"),
    ("name", "  Ann    Lee ", "Ann Lee"), ("city", "San   Francisco", "San Francisco"),
])
def test_filter_value_is_read_as_ingestion_stores_it(field, spelling, stored):
    got = read_values([Value(field, spelling)])[Value(field, spelling)]
    assert got == stored
    expected = ingested(**{field: spelling})[field]
    assert got == str(expected)  # the very value ingestion produced for the same spelling
    assert applied({field: spelling}) == {field: [stored]}


@pytest.mark.parametrize("text", [
    "1970-01-01", "1969-12-31", "2100-12-31", "2101-01-01", "2020-02-29", "2021-02-29",
    "2024-13-01", "2024-00-10", "0001-01-01", "9999-12-31", "2024-1-05", " 2024-01-05",
    "2024-01-05 ", "2024-01-05T00:00:00", "20240105", "2024/01/05", "2023-06-30"])
def test_stored_date_shortcut_agrees_with_the_rules(text):
    """The shortcut that skips clean() for a date already in stored form claims exactly the
    dates clean() reads as themselves."""
    by_rules = _clean([Value("created_date", text)])[0]
    assert _stored_date(text) == (by_rules == text)
    if by_rules is None:
        with pytest.raises(InvalidQuery):
            read_values([Value("created_date", text)])
    else:
        assert read_values([Value("created_date", text)])[Value("created_date", text)] == by_rules


def test_national_phone_uses_the_country_filter_of_the_request():
    assert applied({"country": "United Kingdom", "phone": "020 7946 0958"}) == {
        "country": ["GB"], "phone": ["+442079460958"]}
    assert applied({"country": "USA", "phone": "(415) 555-0100"})["phone"] == ["+14155550100"]
    # the same national number in two countries of the request: both readings are searched
    both = applied({"country": ["GB", "US"], "phone": "020 7946 0958"})
    assert both["phone"] == ["+442079460958", "+12079460958"]
    q = compile_query(parse_request({"filters": {"country": ["GB", "US"],
                                                 "phone": {"ne": "020 7946 0958"}}}), "db")
    assert "phone NOT IN {p" in q.sql
    # no country: ingestion keeps the digits, so does the query
    assert applied({"phone": "(415) 555-0100"})["phone"] == ["4155550100"]
    assert ingested(phone="(415) 555-0100")["phone"] == "4155550100"


def test_operators_keep_their_shape_and_read_their_values():
    got = applied({"status": {"in": ["Active", "enabled", "PENDING"]},
                   "created_date": {"gte": "01/01/2020", "lt": "2021-01-01"},
                   "country": {"ne": "usa"}})
    assert got == {"status": {"in": ["active", "pending"]},
                   "created_date": {"gte": "2020-01-01", "lt": "2021-01-01"},
                   "country": {"ne": "US"}}


def test_contains_and_prefix_are_case_insensitive_fragments():
    q = compile_query(parse_request({"filters": {"name": {"prefix": "  ANN "},
                                                 "email": {"contains": "EXAMPLE.com"},
                                                 "phone": {"prefix": "+44 (608)"}}}), "db")
    assert q.filters_applied == {"email": {"contains": "example.com"},
                                 "name": {"prefix": "ANN"}, "phone": {"prefix": "+44608"}}
    assert "startsWith(lowerUTF8(name), {p" in q.sql
    assert "ann" in q.params.values() and "+44608" in q.params.values()


@pytest.mark.parametrize(("filters", "message"), [
    ({"country": "Narnia"}, "country: cannot read 'Narnia' as a country"),
    ({"country": ["US", "Atlantis"]}, "country: cannot read 'Atlantis' as a country"),
    ({"status": "sleepy"}, "status: cannot read 'sleepy' as a status"),
    ({"status": {"ne": "zombie"}}, "status: cannot read 'zombie' as a status"),
    ({"phone": "call me"}, "phone: cannot read 'call me' as a phone number (it contains letters)"),
    ({"phone": "1-800-FLOWERS"}, "(it contains letters)"),
    ({"phone": "+"}, "phone: cannot read '+' as a phone number"),
    ({"created_date": "31/31/2020"}, "created_date: cannot read '31/31/2020' as a created date"),
    ({"created_date": {"gte": "last tuesday"}}, "cannot read 'last tuesday'"),
    ({"email": 42}, "eq on email takes a string, got number"),
])
def test_values_that_cannot_be_read_are_invalid_queries_naming_field_and_value(filters, message):
    with pytest.raises(InvalidQuery) as exc:
        compile_query(parse_request({"filters": filters}), "db")
    assert message in exc.value.message


def test_free_text_that_ingestion_reads_as_empty_searches_empty():
    assert applied({"city": "N/A"}) == {"city": [""]}
    assert applied({"status": ""}) == {"status": ["unknown"]}  # ingestion's reading of blank


def test_spellings_share_one_cache_key():
    a = compile_query(parse_request({"filters": {"country": "USA", "status": "Active"}}), "db")
    b = compile_query(parse_request({"filters": {"country": "US", "status": "active"}}), "db")
    assert a.cache_key == b.cache_key and a.fingerprint == b.fingerprint


def test_memo_only_reads_known_values_and_signals_new_ones():
    """The API compiles on its event loop under memo_only() and moves to a thread when a value
    needs the rules: a new value signals, a value read once and a stored-form date do not."""
    from creditlake.query.normalize import RulesNeeded, memo_only

    fresh = Value("city", "Memo  Onlyville")  # nobody read this spelling before
    with memo_only(), pytest.raises(RulesNeeded):
        read_values([fresh])
    assert read_values([fresh])[fresh] == "Memo Onlyville"
    with memo_only():
        assert read_values([fresh, Value("created_date", "2022-03-04")]) == {
            fresh: "Memo Onlyville", Value("created_date", "2022-03-04"): "2022-03-04"}
    assert read_values([Value("city", "Memo   Onlyville")])  # outside: the rules run again
