import datetime as dt

import polars as pl
import pytest

from creditlake.rules.identity import clickhouse_hash_sql, python_hash
from creditlake.rules.mapping import infer_mapping
from creditlake.rules.polars import clean, map_columns, parse_dates
from creditlake.rules.validation import validate


def run(rows: list[dict], **kw) -> pl.DataFrame:
    df = pl.DataFrame(rows).with_row_index("source_row", offset=1)
    df = df.with_columns(pl.col("source_row").cast(pl.UInt64))
    return clean(map_columns(df, infer_mapping(df.columns), "t.csv"), **kw)


def one(row: dict, **kw) -> dict:
    return run([row], **kw).to_dicts()[0]


def test_email_trimmed_and_lowercased():
    assert one({"email": "  John.Doe@Example.COM "})["email"] == "john.doe@example.com"
    assert one({"email": "mailto:a@b.co"})["email"] == "a@b.co"


@pytest.mark.parametrize("phone,country,expected", [
    ("020 7123 4567", "UK", "+442071234567"),
    ("(555) 123-4567", "USA", "+15551234567"),
    ("1-555-123-4567", "US", "+15551234567"),
    ("030 1234567", "Germany", "+49301234567"),
    ("06 1234 5678", "IT", "+390612345678"),  # Italy keeps its leading zero
    ("+44 20 7123 4567", None, "+442071234567"),
    ("0044 20 7123 4567", "GB", "+442071234567"),
    ("212-555-1234 ext. 12", "US", "+12125551234"),
    ("555-1234 ext. 12", "US", "5551234"),  # seven digits: not a US number, kept as written
    ("12345678", None, "12345678"),  # unknown country: digits, flagged by validation
])
def test_phone_e164(phone, country, expected):
    assert one({"email": "a@b.co", "phone": phone, "country": country})["phone"] == expected


@pytest.mark.parametrize("spelling", ["UK", "gb", "GBR", "United Kingdom", "england", " u.k. "])
def test_country_spellings_unify(spelling):
    assert one({"email": "a@b.co", "country": spelling})["country"] == "GB"


def test_unknown_country_is_flagged_not_guessed():
    r = one({"email": "a@b.co", "country": "Narnia"})
    assert r["country"] is None
    assert "country: unrecognized 'Narnia'" in r["_warnings"]


def test_country_inferred_from_phone_prefix_is_recorded():
    r = one({"email": "a@b.co", "phone": "+49 30 1234567"})
    assert r["country"] == "DE"
    assert "country: inferred DE from phone prefix" in r["_warnings"]


def test_dates_in_common_formats():
    s = pl.Series(["2020-01-31", "2020/01/31", "31/01/2020", "01/31/2020", "31.01.2020",
                   "2020-01-31T10:00:00Z", "31 Jan 2020", "Jan 31, 2020", "20200131"])
    assert set(parse_dates(s).to_list()) == {dt.date(2020, 1, 31)}


def test_ambiguous_dates_are_month_first_unless_impossible():
    assert parse_dates(pl.Series(["02/03/2020"])).to_list() == [dt.date(2020, 2, 3)]
    assert parse_dates(pl.Series(["13/03/2020"])).to_list() == [dt.date(2020, 3, 13)]
    assert parse_dates(pl.Series(["02/03/2020"]), "%d/%m/%Y").to_list() == [dt.date(2020, 3, 2)]


def test_bad_and_out_of_range_dates_are_nulled_with_a_warning():
    r = one({"email": "a@b.co", "signup_date": "not a date"})
    assert r["created_date"] is None
    assert "created_date: unparseable 'not a date'" in r["_warnings"]
    for old in ("1066-10-14", "1965-03-04", "2150-01-01"):
        r = one({"email": "a@b.co", "signup_date": old})
        assert r["created_date"] is None
        assert r["_warnings"] == [f"created_date: out of range '{old}' "
                                  "(kept: 1970-01-01..2100-12-31)"]


@pytest.mark.parametrize("raw,status", [("Active", "active"), ("1", "active"), ("no", "inactive"),
                                        ("BANNED", "suspended"), ("closed", "deleted"),
                                        (None, "unknown"), ("weird", "unknown")])
def test_status_vocabulary(raw, status):
    assert one({"email": "a@b.co", "status": raw})["status"] == status


def test_null_tokens_whitespace_and_name_parts():
    r = one({"email": "N/A", "user_id": "u1", "first_name": "  Mary ", "last_name": "Jane  Doe",
             "city": " New   York "})
    assert r["email"] is None
    assert r["name"] == "Mary Jane Doe"
    assert r["city"] == "New York"


def test_default_country_override():
    assert one({"email": "a@b.co", "phone": "030 1234567"}, default_country="DE")["phone"] \
        == "+49301234567"


def test_validation_rejects_rows_without_identity_and_scores_the_rest():
    rows = [{"email": "good@x.com", "phone": "", "user_id": None, "name": "A B", "country": "US"},
            {"email": "bad", "phone": None, "user_id": None, "name": "C", "country": None},
            {"email": "bad", "phone": None, "user_id": "U7", "name": None, "country": None}]
    v = validate(run(rows))
    assert v.rejected.get_column("source_row").to_list() == [2]
    assert v.rejected.get_column("reasons")[0][-1].startswith("email") or any(
        "identity" in r for r in v.rejected.get_column("reasons")[0])
    good, kept_bad = v.valid.to_dicts()
    assert good["validation_errors"] == [] and good["data_quality_score"] > 0
    assert any("email_format" in e for e in kept_bad["validation_errors"])
    assert kept_bad["data_quality_score"] < good["data_quality_score"]


def test_hash_definition_is_shared():
    sql = clickhouse_hash_sql()
    assert "MD5" in sql and "lowerUTF8(ifNull(email" in sql
    a = python_hash({"email": "a@b.co", "name": "Ann Lee"})
    assert a == python_hash({"email": "a@b.co", "name": "ANN LEE"}) and len(a) == 32


def test_country_inferred_from_address_is_recorded():
    r = one({"email": "a@b.co", "address": "12 Rue de Rivoli, 75001 Paris, France"})
    assert r["country"] == "FR"
    assert "country: inferred FR from address" in r["_warnings"]
    assert one({"email": "a@b.co", "address": "12 High St, Springfield"})["country"] is None
