"""Fuzzy copies for the demo: the same people, as another system exports them."""

from __future__ import annotations

import polars as pl

from creditlake import samples
from creditlake.samples_fuzzy import fuzzy_copies

IDENTITY = ["email", "first_name", "last_name", "phone"]


def _key(col: str) -> pl.Expr:  # the e-mail's local part is unique per sample person
    return pl.col(col).str.strip_chars().str.to_lowercase().str.split("@").list.first()


def test_copies_lose_the_source_id_and_vary_an_identity_field() -> None:
    people = samples.people(500, seed=2, invalid_rate=0.0, duplicate_rate=0.0)
    copies = fuzzy_copies(people, 200, seed=5)
    assert copies.height == 200 and copies.columns == people.columns
    assert copies["customer_id"].null_count() == 200
    joined = copies.with_columns(_key("email").alias("k")).join(
        people.with_columns(_key("email").alias("k")), on="k", suffix="_orig")
    assert joined.height == 200  # every copy is of a known person
    changed = pl.any_horizontal(*(pl.col(c) != pl.col(f"{c}_orig") for c in IDENTITY))
    assert joined.filter(changed).height == 200
    same_number = (pl.col("phone").str.replace_all(r"\D", "").str.slice(-8)
                   == pl.col("phone_orig").str.replace_all(r"\D", "").str.slice(-8))
    assert joined.filter(same_number).height == 200  # respelled, never another number
    respelled = joined.filter(pl.col("phone") != pl.col("phone_orig")).height
    assert 60 < respelled < 140
    again = fuzzy_copies(people, 200, seed=5)
    assert again.equals(copies)  # seeded
