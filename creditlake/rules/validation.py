"""Pandera (polars backend) validation of normalized contacts.

Failures never stop the batch: each failure case carries its row index, which we turn into
per-row `validation_errors` and a `data_quality_score`. Rows failing the identity check are
rejected (they cannot be stored usefully); everything else is loaded with its findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from creditlake.lazy import hidden_modules
from creditlake.rules import phones, vocab
from creditlake.rules.vocab import WARNINGS
from creditlake.schema import STATUSES

with hidden_modules("pandas", "pyspark", "hypothesis"):  # polars-only pandera: see lazy.py
    import pandera.backends.polars.builtin_checks  # noqa: F401 - else validate() imports hypothesis
    import pandera.polars as pa
    from pandera.backends import register_checks
    from pandera.errors import SchemaErrors

    # the first check run looks (once per process) for pandera's pandas backends: look now
    getattr(register_checks, "_load_get_backend_types_from_mro", lambda: None)()

ROW = "_row"
IDENTITY_CHECK = "has_identity"
# Fields whose presence and validity make up the quality score.
SCORED_FIELDS = ("email", "phone", "name", "address", "city", "country", "created_date",
                 "status")
_ISO2 = sorted(set(vocab.country_table().values()))
NAME_LETTERS = r"\p{L}"
# ContactNormalized's column checks as data, in field order, for the SQL compiler
# (rules/clickhouse.py): (column, check name, "regex" or "isin", pattern or allowed values).
COLUMN_CHECKS: tuple[tuple[str, str, str, str | tuple[str, ...]], ...] = (
    ("email", "email_format", "regex", vocab.EMAIL_PATTERN),
    ("name", "name_has_letters", "regex", NAME_LETTERS),
    ("phone", "phone_valid", "regex", phones.valid_e164_pattern()),
    ("country", "iso_country", "isin", tuple(_ISO2)),
)
IDENTITY_MESSAGE = "identity: no usable email, phone or user_id"


class ContactNormalized(pa.DataFrameModel):
    """A cleaned contact row, before hashing and loading."""

    source_row: pl.UInt64
    user_id: pl.String = pa.Field(nullable=True)
    email: pl.String = pa.Field(nullable=True)
    name: pl.String = pa.Field(nullable=True)
    phone: pl.String = pa.Field(nullable=True)
    address: pl.String = pa.Field(nullable=True)
    city: pl.String = pa.Field(nullable=True)
    country: pl.String = pa.Field(nullable=True)
    created_date: pl.Date = pa.Field(nullable=True)
    status: pl.String = pa.Field(isin=list(STATUSES))

    @pa.check("email", name="email_format")
    def email_format(cls, data: pa.PolarsData) -> pl.LazyFrame:
        c = pl.col(data.key)
        return data.lazyframe.select(c.is_null() | c.str.contains(vocab.EMAIL_PATTERN))

    @pa.check("phone", name="phone_valid")
    def phone_valid(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """E.164 and allowed by its calling code's numbering plan (rules/phones.py)."""
        c = pl.col(data.key)
        return data.lazyframe.select(c.is_null() | c.str.contains(phones.valid_e164_pattern()))

    @pa.check("name", name="name_has_letters")
    def name_letters(cls, data: pa.PolarsData) -> pl.LazyFrame:
        c = pl.col(data.key)
        return data.lazyframe.select(c.is_null() | c.str.contains(NAME_LETTERS))

    @pa.check("country", name="iso_country")
    def iso_country(cls, data: pa.PolarsData) -> pl.LazyFrame:
        c = pl.col(data.key)
        return data.lazyframe.select(c.is_null() | c.is_in(_ISO2))

    @pa.dataframe_check(name=IDENTITY_CHECK)
    def has_identity(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """A record needs at least one usable identity field: email, phone or user_id."""
        email_ok = pl.col("email").str.contains(vocab.EMAIL_PATTERN).fill_null(False)
        phone_ok = (pl.col("phone").str.replace_all(r"\D", "").str.len_chars() >= 7
                    ).fill_null(False)
        return data.lazyframe.select(email_ok | phone_ok | pl.col("user_id").is_not_null())

    class Config:
        strict = False  # extra pipeline columns (source_file, metadata, _warnings) allowed


@dataclass
class Validated:
    valid: pl.DataFrame      # + validation_errors, data_quality_score
    rejected: pl.DataFrame   # source_row, reasons (list[str])


def validate(df: pl.DataFrame, *, keep: Sequence[str] = ()) -> Validated:
    """Run ContactNormalized on the batch and split it into loadable and rejected rows.
    keep: columns the rejected rows carry besides source_row (a batch of files: the file)."""
    df = df.with_row_index(ROW)
    try:
        ContactNormalized.validate(df, lazy=True)
        failures = pl.DataFrame(schema={"index": pl.Int64, "column": pl.String,
                                        "check": pl.String, "failure_case": pl.String})
    except SchemaErrors as err:
        failures = err.failure_cases.select(
            pl.col("index").cast(pl.Int64), pl.col("column").cast(pl.String),
            pl.col("check").cast(pl.String), pl.col("failure_case").cast(pl.String))
    schema_level = failures.filter(pl.col("index").is_null())
    if schema_level.height:  # wrong dtype / missing column: a programming error, not data
        raise ValueError(f"normalized frame does not match ContactNormalized: "
                         f"{schema_level.to_dicts()}")
    failures = failures.with_columns(
        pl.when(pl.col("check") == IDENTITY_CHECK)
        .then(pl.lit(IDENTITY_MESSAGE))
        .otherwise(pl.format("{}: {} failed for '{}'", "column", "check", "failure_case"))
        .alias("message"))
    # Failures are few compared to rows: build per-row messages on the failures only, then
    # join; per-field flags are hash-membership tests on row indexes.
    messages = failures.group_by("index").agg(pl.col("message"))
    fatal_rows = failures.filter(pl.col("check") == IDENTITY_CHECK).get_column("index")
    bad = {f: failures.filter(pl.col("column") == f).get_column("index").cast(pl.UInt32)
           for f in SCORED_FIELDS}
    present = [
        (pl.col(f).is_not_null()
         & ((pl.col(f) != "unknown") if f == "status" else pl.lit(True))
         & ~pl.col(ROW).is_in(bad[f].implode())).cast(pl.Float32)
        for f in SCORED_FIELDS
    ]
    df = df.with_columns(
        (pl.sum_horizontal(present) / len(SCORED_FIELDS)).cast(pl.Float32)
        .alias("data_quality_score"),
        pl.col(ROW).is_in(fatal_rows.cast(pl.UInt32).implode()).alias("_fatal"))
    if messages.height:
        df = df.join(messages, left_on=ROW, right_on="index", how="left")
        errors = pl.when(pl.col("message").is_null()).then(pl.col(WARNINGS)).otherwise(
            pl.concat_list([pl.col("message"), pl.col(WARNINGS)]))
        df = df.with_columns(errors.alias("validation_errors")).drop("message")
    else:
        df = df.with_columns(pl.col(WARNINGS).alias("validation_errors"))
    rejected = df.filter(pl.col("_fatal")).select(
        *keep, "source_row", pl.col("validation_errors").alias("reasons"))
    valid = df.filter(~pl.col("_fatal")).drop(ROW, "_fatal", WARNINGS)
    return Validated(valid=valid, rejected=rejected)
