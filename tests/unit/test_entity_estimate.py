"""When the model is re-estimated, and the guard rails that keep a bad fit out (no services)."""

from __future__ import annotations

import copy

import pyarrow as pa

from creditlake.entity.estimate import (
    MIN_SAMPLE,
    estimate,
    estimation_reason,
    feature_profile,
    sanity_problems,
)
from creditlake.entity.model import load_model

SHIPPED = load_model()
LIKE_TRAINING = dict(SHIPPED.extra["trained_on"]["profile"])


def test_a_source_without_email_and_phone_triggers_re_estimation() -> None:
    febrl_like = {**LIKE_TRAINING, "email": 0.0, "phone": 0.0}
    reason = estimation_reason(SHIPPED, febrl_like, 5000, "db")
    assert reason.startswith("profile:") and "email" in reason and "phone" in reason
    assert estimation_reason(SHIPPED, LIKE_TRAINING, 5000, "db") == ""
    assert estimation_reason(SHIPPED, febrl_like, MIN_SAMPLE - 1, "db") == ""  # too few


def test_growth_re_estimates_only_a_model_fitted_on_this_database() -> None:
    own = copy.deepcopy(SHIPPED)
    own.extra["trained_on"] = {"records": 10_000, "database": "db", "profile": LIKE_TRAINING}
    assert estimation_reason(own, LIKE_TRAINING, 19_000, "db") == ""
    assert estimation_reason(own, LIKE_TRAINING, 20_000, "db").startswith("growth:")
    assert estimation_reason(own, LIKE_TRAINING, 20_000, "other") == ""
    assert estimation_reason(SHIPPED, LIKE_TRAINING, 10**7, "db") == ""  # generic model


def test_guard_rails_reject_an_implausible_fit() -> None:
    assert sanity_problems(SHIPPED, LIKE_TRAINING) == []
    bad = copy.deepcopy(SHIPPED)
    bad.splink["probability_two_random_records_match"] = 0.99
    email = next(c for c in bad.splink["comparisons"] if c["output_column_name"] == "email")
    exact = next(lvl for lvl in email["comparison_levels"] if not lvl.get("is_null_level"))
    exact["m_probability"], exact["u_probability"] = 0.001, 0.5
    problems = sanity_problems(bad, LIKE_TRAINING)
    assert any("prior" in p for p in problems)
    assert any(p.startswith("email: exact match") for p in problems)
    surname = next(c for c in bad.splink["comparisons"] if c["output_column_name"] == "surname")
    other = surname["comparison_levels"][-1]
    other["m_probability"], other["u_probability"] = 0.9, 0.5
    assert any(p.startswith("surname: a full mismatch") for p in sanity_problems(
        bad, LIKE_TRAINING))
    # an empty column carries no evidence: its untrained levels are not held against the fit
    assert not any(p.startswith("email") for p in sanity_problems(bad, {"email": 0.0}))


def test_too_small_a_sample_keeps_the_previous_model_and_says_why() -> None:
    feats = pa.table({c: pa.array(["x"] * 10) for c in
                      ("unique_id", "first_name", "surname", "dob", "email", "phone", "address",
                       "city", "postcode", "user_id")})
    assert feature_profile(feats)["email"] == 1.0
    model, est = estimate(feats, SHIPPED, "people", "db", "profile: test", 10)
    assert model is SHIPPED and est.status == "rejected"
    assert est.model_version == SHIPPED.version and "minimum" in est.problems[0]
