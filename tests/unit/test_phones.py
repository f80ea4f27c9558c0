"""Phone validity by numbering plan and e-mail syntax on the Polars path (the Spark path is
checked against the same cases in tests/integration/test_spark_parity.py)."""

from __future__ import annotations

import re

import phonenumbers
import polars as pl
import pytest
from rule_cases import EMAIL_CASES, PHONE_CASES

from creditlake import samples
from creditlake.rules import phones
from creditlake.rules.mapping import infer_mapping
from creditlake.rules.polars import clean, map_columns
from creditlake.rules.validation import validate


def _clean(rows: list[dict]) -> pl.DataFrame:
    df = pl.DataFrame(rows, schema={k: pl.String for k in rows[0]}).with_row_index(
        "source_row", offset=1).with_columns(pl.col("source_row").cast(pl.UInt64))
    return clean(map_columns(df, infer_mapping(df.columns), "t.csv"))


@pytest.mark.parametrize("raw,country,stored,valid", PHONE_CASES)
def test_phone_numbering_plan(raw, country, stored, valid):
    v = validate(_clean([{"email": "a@b.co", "phone": raw, "country": country,
                          "name": "Ann Lee"}])).valid.to_dicts()[0]
    assert v["phone"] == stored
    flagged = [e for e in v["validation_errors"] if e.startswith("phone:")]
    assert flagged == ([] if valid else [f"phone: phone_valid failed for '{stored}'"])


def test_invalid_phone_lowers_the_score_and_keeps_the_row():
    rows = [{"email": "a@b.co", "phone": p, "country": "US", "name": "Ann Lee"}
            for p in ("(212) 555-0123", "(212) 555-012")]
    good, bad = validate(_clean(rows)).valid.sort("source_row").to_dicts()
    assert bad["data_quality_score"] == pytest.approx(good["data_quality_score"] - 1 / 8)


def test_pattern_agrees_with_phonenumbers_examples():
    """Every example number libphonenumber ships (fixed line, mobile, toll free, per region)
    is valid, and a valid pattern match is always a possible number (length check)."""
    rx = re.compile(phones.valid_e164_pattern())
    types = (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE,
             phonenumbers.PhoneNumberType.TOLL_FREE)
    n = 0
    for region in phonenumbers.SUPPORTED_REGIONS:
        for t in types:
            example = phonenumbers.example_number_for_type(region, t)
            if example is None:
                continue
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            assert rx.match(e164), (region, e164)
            n += 1
    assert n > 500
    for e164 in ("+12125550123", "+447911123456", "+4915123456789", "+33612345678"):
        for cut in range(1, 4):  # shorter versions: a match must still be a possible number
            shorter = e164[:-cut]
            if rx.match(shorter):
                assert phonenumbers.is_possible_number(phonenumbers.parse(shorter)), shorter


@pytest.mark.parametrize("email,valid", EMAIL_CASES)
def test_email_validity(email, valid):
    v = validate(_clean([{"email": email, "phone": "+12125550123"}])).valid.to_dicts()[0]
    assert any(e.startswith("email:") for e in v["validation_errors"]) is not valid


def test_sample_phones_valid_in_their_real_formats_with_a_known_invalid_share():
    n, rate = 4000, 0.05
    people = samples.people(n, seed=5, invalid_rate=0.0, duplicate_rate=0.0,
                            invalid_phone_rate=rate)
    out = validate(_clean(people.rename({"customer_id": "user_id"}).to_dicts())).valid
    flagged = out.filter(pl.col("validation_errors").list.eval(
        pl.element().str.starts_with("phone:")).list.any())
    assert flagged.height == int(n * rate)
    raw = people.get_column("phone")
    # national and international spellings are both present
    assert raw.str.starts_with("+").any() and raw.str.starts_with("00").any()
    assert raw.str.starts_with("(").any() and raw.str.starts_with("0").any()
