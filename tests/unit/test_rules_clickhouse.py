"""The ClickHouse SQL compiler of the rules: dialect translation and that it reads the rule data
(the parity with Polars and Spark is tests/integration/test_spark_parity.py)."""

from __future__ import annotations

import pytest

from creditlake.rules import clickhouse as rc
from creditlake.rules.validation import COLUMN_CHECKS, ContactNormalized


def test_rust_classes_become_unicode_re2_classes() -> None:
    assert rc.re2(r"\d{4}") == r"\p{Nd}{4}"
    assert rc.re2(r"\D") == r"[^\p{Nd}]"
    assert rc.re2(r"\s*x").startswith("[\\t-\\r \\x{85}\\x{A0}")
    assert rc.re2(r"[\d-]") == r"[\p{Nd}-]"
    assert rc.re2(r"a\.b\\d") == r"a\.b\\d"  # escaped backslash: not a class
    with pytest.raises(rc.UnsupportedRule):
        rc.re2(r"[\S]")


def test_column_checks_are_the_pandera_models() -> None:
    """COLUMN_CHECKS (what the SQL compiles) names the model's own column checks."""
    schema = ContactNormalized.to_schema()
    model = {(col, check.name) for col, c in schema.columns.items() for check in c.checks}
    custom = {(col, name) for col, name in model if name != "isin"}  # status: built-in isin
    assert custom == {(col, name) for col, name, _, _ in COLUMN_CHECKS}


def test_date_formats_compile_and_unknown_directives_are_refused() -> None:
    pattern, fields = rc.date_regex("%d %b %Y")
    assert fields == ["d", "mon", "y"] and pattern.startswith("^")
    assert rc._fields("%Y%m%d")[1] == 1  # one digit run, cut at the fields' widths
    with pytest.raises(rc.UnsupportedRule):
        rc.date_regex("%d/%m/%Y %H:%M")


def test_literals_are_quoted() -> None:
    assert rc.quote("it's a \\ test") == "'it\\'s a \\\\ test'"
