"""Rules -> Polars expressions: map source columns, clean values, collect warnings.

Everything here is vectorized; no per-row Python. The output feeds Pandera validation
(creditlake/validation.py) and then the ClickHouse loader.
"""

from __future__ import annotations

import polars as pl

from creditlake.readers.base import SOURCE_ROW
from creditlake.rules import vocab
from creditlake.rules.mapping import ADDRESS_PARTS, NAME_PARTS, ColumnMapping

TEXT_FIELDS = ("user_id", "email", "name", "phone", "address", "city", "country",
               "created_date", "status")
E164_PATTERN = r"^\+[1-9][0-9]{7,14}$"
WARNINGS = "_warnings"


def _text(expr: pl.Expr) -> pl.Expr:
    """Trim, collapse inner whitespace, and turn null tokens ("N/A", "null", "-") into null."""
    collapsed = expr.cast(pl.String).str.replace_all(r"\s+", " ").str.strip_chars()
    return (pl.when(collapsed.str.to_lowercase().is_in(list(vocab.NULL_TOKENS)))
            .then(None).otherwise(collapsed))


def _join(cols: list[str], sep: str) -> pl.Expr:
    parts = [_text(pl.col(c)) for c in cols]
    joined = pl.concat_str(parts, separator=sep, ignore_nulls=True)
    return pl.when(joined.str.len_chars() > 0).then(joined).otherwise(None)


def map_columns(df: pl.DataFrame, mapping: ColumnMapping, source_file: str) -> pl.DataFrame:
    """Source columns -> master text columns + `metadata` JSON of unmapped columns."""
    t = mapping.targets
    exprs: list[pl.Expr] = [pl.lit(source_file).alias("source_file"),
                            pl.col(SOURCE_ROW).cast(pl.UInt64)]
    for field in TEXT_FIELDS:
        if field == "name" and "name" not in t and any(p in t for p in NAME_PARTS):
            cols = [c for p in NAME_PARTS for c in t.get(p, [])]
            exprs.append(_join(cols, " ").alias("name"))
        elif field == "address" and "address" not in t and any(p in t for p in ADDRESS_PARTS):
            number = t.get("address.street_number", [])
            line1 = t.get("address.line1", [])
            line2 = t.get("address.line2", [])
            street = _join(number + line1, " ") if number or line1 else pl.lit(None, pl.String)
            rest = [_text(pl.col(c)) for c in line2]
            exprs.append(pl.concat_str([street, *rest], separator=", ", ignore_nulls=True)
                         .alias("address"))
        elif field in t:
            exprs.append(pl.col(t[field][0]).cast(pl.String).alias(field))
        else:
            exprs.append(pl.lit(None, pl.String).alias(field))
    # Parts that were joined stay visible in metadata next to the unmapped columns.
    meta_cols = list(mapping.metadata) + [c for p in (*NAME_PARTS, *ADDRESS_PARTS)
                                          for c in t.get(p, [])]
    if meta_cols:
        exprs.append(pl.struct([pl.col(c).cast(pl.String) for c in meta_cols])
                     .struct.json_encode().alias("metadata"))
    else:
        exprs.append(pl.lit("{}").alias("metadata"))
    return df.select(exprs)


def _warn(cond: pl.Expr, message: pl.Expr | str) -> pl.Expr:
    msg = pl.lit(message) if isinstance(message, str) else message
    return pl.when(cond).then(msg).otherwise(None)


def clean(df: pl.DataFrame, *, default_country: str | None = None,
          date_format: str | None = None) -> pl.DataFrame:
    """Normalize the master text columns. Adds `_warnings` (list of strings) for values that
    were changed or dropped on the way (unparseable dates, unknown countries, ...)."""
    countries = vocab.country_table()
    codes = vocab.calling_codes()
    code_to_region = {code: region for region, code in sorted(codes.items(), reverse=True)}
    code_to_region.update({"1": "US", "44": "GB", "7": "RU", "61": "AU", "39": "IT"})

    df = df.with_columns([_text(pl.col(c)).alias(c) for c in TEXT_FIELDS])

    # country: any spelling -> ISO alpha-2
    raw_country = pl.col("country")
    country_key = raw_country.str.to_lowercase().str.replace_all(r"[^0-9a-zà-ÿ]+", "")
    iso = country_key.replace_strict(countries, default=None, return_dtype=pl.String)
    if default_country:
        iso = pl.when(raw_country.is_null()).then(pl.lit(default_country)).otherwise(iso)

    # email
    email = (pl.col("email").str.to_lowercase().str.strip_prefix("mailto:")
             .str.strip_chars("<>\"' "))

    # phone: E.164 when the country (given or inferred) is known
    raw_phone = pl.col("phone").str.replace(r"(?i)\s*(ext\.?|x|#)\s*\d{1,6}$", "")
    digits = raw_phone.str.replace_all(r"\D", "")
    has_plus = raw_phone.str.strip_chars().str.starts_with("+")
    intl = has_plus | digits.str.starts_with("00")
    intl_digits = pl.when(has_plus).then(digits).otherwise(digits.str.slice(2))
    df = df.with_columns(iso.alias("_iso"), email.alias("email"), digits.alias("_digits"),
                         intl.alias("_intl"), intl_digits.alias("_intl_digits"),
                         raw_country.alias("_raw_country"))
    # infer country from an international prefix when the source has none
    prefix_region = pl.coalesce(
        [pl.col("_intl_digits").str.slice(0, n).replace_strict(code_to_region, default=None,
                                                               return_dtype=pl.String)
         for n in (3, 2, 1)])
    inferred = pl.col("_iso").is_null() & pl.col("_raw_country").is_null() & pl.col("_intl") \
        & prefix_region.is_not_null()
    df = df.with_columns(
        pl.when(inferred).then(prefix_region).otherwise(pl.col("_iso")).alias("_iso"),
        inferred.alias("_country_inferred"))
    cc = pl.col("_iso").replace_strict(codes, default=None, return_dtype=pl.String)
    d = pl.col("_digits")
    keep_zero = pl.col("_iso").is_in(list(vocab.KEEP_LEADING_ZERO))
    national = pl.when(keep_zero).then(d).otherwise(d.str.strip_prefix("0"))
    phone = (
        pl.when(d.is_null() | (d.str.len_chars() == 0)).then(None)
        .when(pl.col("_intl")).then(pl.lit("+") + pl.col("_intl_digits"))
        .when((cc == "1") & (d.str.len_chars() == 11) & d.str.starts_with("1"))
        .then(pl.lit("+") + d)
        .when(cc.is_not_null() & (d.str.len_chars() > 10) & d.str.starts_with(cc))
        .then(pl.lit("+") + d)
        .when(cc.is_not_null()).then(pl.lit("+") + cc + national)
        .otherwise(d)
    )

    # dates: first format that parses wins; ISO datetimes by their date part
    s = pl.col("created_date")
    fmts = (date_format,) if date_format else vocab.DATE_FORMATS
    parsed = pl.coalesce(
        [s.str.strptime(pl.Date, f, strict=False, exact=True) for f in fmts]
        + [s.str.extract(r"^(\d{4}-\d{2}-\d{2})[T ]", 1)
           .str.strptime(pl.Date, "%Y-%m-%d", strict=False)])
    in_range = parsed.dt.year().is_between(vocab.DATE_MIN_YEAR, vocab.DATE_MAX_YEAR)
    created = pl.when(in_range).then(parsed).otherwise(None)

    status_key = pl.col("status").str.to_lowercase()
    status = status_key.replace_strict(vocab.STATUS_SYNONYMS, default="unknown",
                                       return_dtype=pl.String)

    df = df.with_columns(
        phone.alias("phone"), created.alias("created_date"), status.alias("status"),
        pl.col("_iso").alias("country"),
        pl.concat_list([
            _warn(pl.col("_raw_country").is_not_null() & pl.col("_iso").is_null(),
                  pl.format("country: unrecognized '{}'", pl.col("_raw_country"))),
            _warn(pl.col("_country_inferred"),
                  pl.format("country: inferred {} from phone prefix", pl.col("_iso"))),
            _warn(s.is_not_null() & created.is_null(),
                  pl.format("created_date: unparseable '{}'", s)),
            _warn(pl.col("status").is_not_null()
                  & ~status_key.is_in(list(vocab.STATUS_SYNONYMS)),
                  pl.format("status: unrecognized '{}'", pl.col("status"))),
        ]).list.drop_nulls().alias(WARNINGS),
    )
    return df.drop("_iso", "_digits", "_intl", "_intl_digits", "_raw_country",
                   "_country_inferred")
