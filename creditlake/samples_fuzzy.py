"""Fuzzy copies of sample people: the same person as another system exports them.

Hash dedup cannot see these (the identity fields differ); entity resolution must. Every copy
loses the source's customer id (a re-export from another system) and gets one of: a typo in
the surname, a nickname, first and last name swapped, an e-mail at another provider; half of
them also spell the phone the other way (national <-> international). Vectorized Polars on
the canonical columns of creditlake.samples.people; seeded.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from creditlake import samples

NICKNAMES = {"James": "Jim", "Robert": "Bob", "Michael": "Mike", "William": "Bill",
             "Richard": "Rick", "Joseph": "Joe", "Thomas": "Tom", "Elizabeth": "Liz",
             "Jennifer": "Jenny", "Patricia": "Pat", "Susan": "Sue", "Jessica": "Jess",
             "Barbara": "Barb", "Charles": "Charlie", "Oliver": "Ollie", "Sophia": "Sophie",
             "Olivia": "Liv", "Amelia": "Millie", "David": "Dave", "Sarah": "Sally"}
VARIATIONS = ("surname_typo", "nickname", "swapped_names", "other_email_provider")
# country spelling (any of the sample's) -> ISO code
_ISO = {spelling: iso for iso, names in samples.COUNTRIES.items() for spelling in names}


def fuzzy_copies(people: pl.DataFrame, n: int, seed: int = 3) -> pl.DataFrame:
    """`n` varied copies of randomly chosen rows of `people` (same columns)."""
    if n <= 0 or people.height == 0:
        return people.clear()
    rng = np.random.default_rng(seed)
    base = people.filter(pl.col("email").str.contains("@")).sample(
        n, with_replacement=True, seed=seed)
    kind = pl.Series(rng.integers(0, len(VARIATIONS), base.height))
    # a first name without a nickname gets the surname typo instead
    kind = pl.Series(np.where((kind.to_numpy() == 1) & ~base["first_name"].is_in(
        list(NICKNAMES)).to_numpy(), 0, kind.to_numpy()))
    pick = pl.Series(rng.integers(0, 1 << 30, base.height))
    respell = pl.Series(rng.integers(0, 2, base.height) == 1)
    first, last = pl.col("first_name"), pl.col("last_name")
    k = (pl.lit(pick) % (last.str.len_chars() - 1).clip(lower_bound=1)) + 1
    typo = last.str.slice(0, k) + last.str.slice(k + 1)
    local = pl.col("email").str.strip_chars().str.split("@").list.first()
    other = pl.lit(pl.Series(np.array(samples.DOMAINS)[pick.to_numpy() % len(samples.DOMAINS)]))
    return base.with_columns(
        pl.lit(None, pl.String).alias("customer_id"),
        pl.when(pl.lit(kind) == 2).then(last)
        .when(pl.lit(kind) == 1).then(first.replace(NICKNAMES))
        .otherwise(first).alias("first_name"),
        pl.when(pl.lit(kind) == 2).then(first)
        .when(pl.lit(kind) == 0).then(typo)
        .otherwise(last).alias("last_name"),
        pl.when(pl.lit(kind) == 3)
        .then(local + "@" + pl.when(pl.col("email").str.ends_with(other.cast(pl.String)))
              .then(pl.lit("outlook.com")).otherwise(other))
        .otherwise(pl.col("email")).alias("email"),
        pl.when(pl.lit(respell)).then(other_spelling(pl.col("phone"), pl.col("country")))
        .otherwise(pl.col("phone")).alias("phone"),
    )


def other_spelling(phone: pl.Expr, country: pl.Expr) -> pl.Expr:
    """+CC NSN <-> trunk + NSN for the country's numbering plan (unchanged if unsure)."""
    iso = country.replace_strict(_ISO, default=None)
    cc = iso.replace_strict(samples.CALLING, default=None)
    trunk = iso.replace_strict({c: p[2] for c, p in samples.PHONE_PLANS.items()}, default="")
    length = iso.replace_strict({c: p[1] for c, p in samples.PHONE_PLANS.items()},
                                default=0, return_dtype=pl.Int64)
    digits = phone.str.replace_all(r"[^0-9]", "")
    intl = phone.str.strip_chars().str.starts_with("+") | phone.str.starts_with("00")
    no_00 = pl.when(phone.str.starts_with("00")).then(digits.str.slice(2)).otherwise(digits)
    nsn_intl = no_00.str.slice(cc.str.len_chars())
    has_trunk = (trunk != "") & digits.str.starts_with(trunk) & (
        digits.str.len_chars() == length + trunk.str.len_chars())
    nsn_nat = pl.when(has_trunk).then(digits.str.slice(trunk.str.len_chars())).otherwise(digits)
    return (pl.when(cc.is_null() | phone.is_null()).then(phone)
            .when(intl).then(trunk + nsn_intl)
            .otherwise(pl.lit("+") + cc + " " + nsn_nat))
