"""Entity resolution, engine-free parts: feature preparation, placeholders, model plumbing."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from creditlake.entity.explain import explain_pairs, size_distribution
from creditlake.entity.model import EntityModel, load_model
from creditlake.entity.prepare import RECORD_INPUT_COLUMNS, prepare
from creditlake.entity.resolve import blocking_columns, candidate_sql, tf_columns


def records(*rows: dict) -> pa.Table:
    cols = {c: [r.get(c) for r in rows] for c in RECORD_INPUT_COLUMNS}
    cols["id"] = [r.get("id", f"r{i}") for i, r in enumerate(rows)]
    return pa.table({c: pa.array(v, pa.string()) for c, v in cols.items()})


def feats_of(*rows: dict, frequent: pa.Table | None = None) -> list[dict]:
    return prepare(records(*rows), frequent).sort_by("unique_id").to_pylist()


def test_names_split_and_normalized() -> None:
    a, b, c, d = feats_of(
        {"id": "a", "name": "  José   O'Brien "},
        {"id": "b", "name": "Smith, John"},
        {"id": "c", "name": "Madonna"},
        {"id": "d", "name": "N/A"},
    )
    assert (a["first_name"], a["surname"]) == ("jose", "obrien")
    assert (b["first_name"], b["surname"]) == ("john", "smith")
    assert (c["first_name"], c["surname"]) == (None, "madonna")
    assert (d["first_name"], d["surname"]) == (None, None)


def test_metadata_supplies_dob_postcode_city_under_any_spelling() -> None:
    a, b, c = feats_of(
        {"id": "a", "metadata": json.dumps({"Date Of Birth": "19560909", "ZIP": "4011",
                                            "Suburb": "St James"})},
        {"id": "b", "metadata": json.dumps({"dob": "09/09/1956", "post_code": 4011}),
         "city": "Perth"},
        {"id": "c", "metadata": "not json"},
    )
    assert (a["dob"], a["postcode"], a["city"]) == ("1956-09-09", "4011", "st james")
    assert (b["dob"], b["postcode"], b["city"]) == ("1956-09-09", "4011", "perth")
    assert (c["dob"], c["postcode"]) == (None, None)


def test_placeholders_are_nulled() -> None:
    rows = feats_of(
        {"id": "a", "email": "test@test.com", "phone": "000-000-0000", "user_id": "N/A"},
        {"id": "b", "email": "noemail@example.com", "phone": "1234567890"},
        {"id": "c", "email": "unknown", "phone": "n/a"},
        {"id": "d", "email": " Jane.Doe@Mail.co.uk ", "phone": "+44 7700 900123"},
    )
    for r in rows[:3]:
        assert r["email"] is None and r["phone"] is None and r["user_id"] is None
    assert rows[3]["email"] == "jane.doe@mail.co.uk"
    assert rows[3]["phone"] == "700900123"  # last 9 digits: +44 / 0 prefixes agree


def test_frequent_values_are_nulled() -> None:
    frequent = pa.table({"field": ["email", "phone", "user_id"],
                         "value": ["info@shop.com", "555123456", "42"]})
    (a,) = feats_of({"id": "a", "email": "INFO@shop.com", "phone": "+1 (555) 123-456",
                     "user_id": "42"}, frequent=frequent)
    assert a["email"] is None and a["phone"] is None and a["user_id"] is None


def test_address_abbreviations_expand() -> None:
    (a,) = feats_of({"id": "a", "address": "12 High St."})
    assert a["address"] == "12 high street"


def test_shipped_model_loads_and_is_versioned() -> None:
    model = load_model()
    assert model.version.startswith("people-v1+")
    assert 0.5 <= model.threshold < 1
    weights = model.match_weights()
    assert weights["email"]["Exact match on email"] > 5
    assert weights["surname"]["All other comparisons"] < 0
    # Any parameter change is a new version.
    other = EntityModel.from_json(json.loads(json.dumps(model.as_json())))
    assert other.version == model.version
    other.threshold = 0.5
    assert other.version != model.version


def test_blocking_columns_and_candidate_sql() -> None:
    model = load_model()
    cols = blocking_columns(model)
    assert ("email",) in cols and ("surname", "city") in cols
    sql = candidate_sql("db", "run1", cols)
    assert ("cityHash64(surname, city) IN (SELECT cityHash64(surname, city)"
            " FROM db.entity_features_new") in sql
    assert sql.count("FROM db.entity_features ") == 1  # one scan of the resolved features
    assert set(tf_columns(model)) >= {"first_name", "surname", "city"}
    bad = EntityModel.from_json(json.loads(json.dumps(model.as_json())))
    bad.splink["blocking_rules_to_generate_predictions"] = [
        {"blocking_rule": "levenshtein(l.surname, r.surname) < 2"}]
    with pytest.raises(ValueError, match="equality"):
        blocking_columns(bad)


def test_size_distribution_and_explanations() -> None:
    dist = size_distribution(pa.array([1, 1, 2, 3, 7, 60]))
    assert dist == {"1": 2, "2": 1, "3": 1, "4-5": 0, "6-10": 1, "11-50": 0, ">50": 1}
    model = load_model()
    pairs = pa.table({
        "unique_id_l": ["a"], "unique_id_r": ["b"], "match_weight": [20.0],
        "match_probability": [0.999], "gamma_email": [4], "mw_email": [16.0],
        "email_l": ["x@y.com"], "email_r": ["x@y.com"], "gamma_surname": [0],
        "mw_surname": [-11.0], "mw_tf_adj_surname": [0.0], "surname_l": ["smith"],
        "surname_r": ["jones"],
    })
    (ex,) = explain_pairs(pairs, model)
    assert ex["raised_by"][0]["comparison"] == "email"
    assert ex["raised_by"][0]["level"] == "Exact match on email"
    assert ex["lowered_by"][0]["comparison"] == "surname"
    assert ex["lowered_by"][0]["level"] == "All other comparisons"
