"""Rules -> Polars expressions: map source columns, clean values, collect warnings.

Everything here is vectorized; no per-row Python. The output feeds Pandera validation
(creditlake/rules/validation.py) and then the ClickHouse loader.
"""

from __future__ import annotations

import polars as pl
import polars.selectors  # noqa: F401

from creditlake.rules import phones, vocab
from creditlake.rules.mapping import ADDRESS_PARTS, NAME_PARTS, ColumnMapping
from creditlake.rules.vocab import FREE_TEXT, WARNINGS
from creditlake.schema import SOURCE_FIELDS, SOURCE_ROW


def _text(expr: pl.Expr, collapse: bool = True) -> pl.Expr:
    """Trim (and collapse inner whitespace of free text); null tokens ("N/A", "-") -> null."""
    text = expr.cast(pl.String)
    if collapse:  # rewriting only the values that need it: most have single spaces only
        text = pl.when(text.str.contains(r"\s\s|[^\S ]")).then(
            text.str.replace_all(r"\s+", " ")).otherwise(text)
    text = text.str.strip_chars()
    return pl.when(text.is_in(vocab.NULL_TOKEN_SPELLINGS)).then(None).otherwise(text)


def _join(cols: list[str], sep: str) -> pl.Expr:
    """Join parts; blanks/null tokens are dropped later by clean() on the joined text."""
    parts = [pl.col(c).cast(pl.String).str.strip_chars() for c in cols]
    parts = [pl.when(p.str.len_bytes() > 0).then(p) for p in parts]
    return pl.concat_str(parts, separator=sep, ignore_nulls=True)


def map_columns(df: pl.DataFrame, mapping: ColumnMapping, source_file: str) -> pl.DataFrame:
    """Source columns -> master text columns + `metadata` JSON of unmapped columns."""
    t = mapping.targets
    exprs: list[pl.Expr] = [pl.lit(source_file).alias("source_file"),
                            pl.col(SOURCE_ROW).cast(pl.UInt64)]
    for field in SOURCE_FIELDS:
        if field == "name" and "name" not in t and any(p in t for p in NAME_PARTS):
            cols = [c for p in NAME_PARTS for c in t.get(p, [])]
            exprs.append(_join(cols, " ").alias("name"))
        elif field == "address" and "address" not in t and any(p in t for p in ADDRESS_PARTS):
            number = t.get("address.street_number", [])
            line1 = t.get("address.line1", [])
            line2 = t.get("address.line2", [])
            street = _join(number + line1, " ") if number or line1 else pl.lit(None, pl.String)
            rest = [pl.col(c).cast(pl.String).str.strip_chars() for c in line2]
            rest = [pl.when(r.str.len_bytes() > 0).then(r) for r in rest]
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


def parse_dates(s: pl.Series, date_format: str | None = None) -> pl.Series:
    """First format that parses wins. Each format only sees the values still unparsed, so a
    column in one format costs one pass instead of one per known format."""
    s = s.str.replace(vocab.ISO_DATETIME_PATTERN, "$1")  # ISO datetimes: the date part
    out = pl.Series(s.name, [None] * len(s), pl.Date)
    todo = s.is_not_null()
    for fmt in (date_format,) if date_format else vocab.DATE_FORMATS:
        if not todo.any():
            break
        idx = todo.arg_true()
        got = s.gather(idx).str.strptime(pl.Date, fmt, strict=False, exact=True)
        hit = got.is_not_null()
        out = out.scatter(idx.filter(hit), got.filter(hit))
        todo = todo.scatter(idx.filter(hit), False)
    return out


def _warn(cond: pl.Expr, message: pl.Expr | str) -> pl.Expr:
    msg = pl.lit(message) if isinstance(message, str) else message
    return pl.when(cond).then(msg).otherwise(None)


def _around(parts: tuple[str, str], col: str) -> pl.Expr:
    return pl.lit(parts[0]) + pl.col(col) + pl.lit(parts[1])


def clean(df: pl.DataFrame, *, default_country: str | None = None,
          date_format: str | None = None) -> pl.DataFrame:
    """Normalize the master text columns. Adds `_warnings` (list of strings) for values that
    were changed or dropped on the way (unparseable dates, unknown countries, ...)."""
    countries = vocab.country_table()
    codes = vocab.calling_codes()
    code_to_region = vocab.calling_code_regions()

    df = df.with_columns([_text(pl.col(c), c in FREE_TEXT).alias(c) for c in SOURCE_FIELDS])

    # Each expensive value is materialized once as a helper column: Polars would otherwise
    # re-evaluate shared sub-expressions in every branch of the when/then chains below.
    raw_country = pl.col("country")
    country_key = raw_country.str.to_lowercase().str.replace_all(vocab.COUNTRY_KEY_STRIP, "")
    iso = country_key.replace_strict(countries, default=None, return_dtype=pl.String)
    if default_country:
        iso = pl.when(raw_country.is_null()).then(pl.lit(default_country)).otherwise(iso)
    email = (pl.col("email").str.to_lowercase().str.strip_prefix("mailto:")
             .str.strip_chars(vocab.EMAIL_STRIP_CHARS))
    raw_phone = (pl.col("phone").str.replace("(?i)" + vocab.PHONE_EXTENSION_PATTERN, "")
                 .str.replace(vocab.PHONE_BRACKETED_TRUNK, ""))
    s = pl.col("created_date")
    parsed = parse_dates(df.get_column("created_date"), date_format)
    df = df.with_columns(
        iso.alias("_iso"), email.alias("email"), raw_country.alias("_raw_country"),
        raw_phone.str.replace_all(r"\D", "").alias("_digits"),
        raw_phone.str.strip_chars().str.starts_with("+").alias("_plus"),
        parsed.alias("_parsed"), s.alias("_raw_date"),
        pl.col("status").str.to_lowercase().alias("_status_key"),
    )
    d = pl.col("_digits")
    df = df.with_columns(
        (pl.col("_plus") | d.str.starts_with("00")).alias("_intl"),
        pl.when(pl.col("_plus")).then(d).otherwise(d.str.slice(2)).alias("_intl_digits"),
        d.str.len_chars().alias("_dlen"),
    )
    # infer country from an international prefix when the source has none
    prefix_region = pl.coalesce(
        [pl.col("_intl_digits").str.slice(0, n).replace_strict(code_to_region, default=None,
                                                               return_dtype=pl.String)
         for n in (3, 2, 1)])
    needs_inference = pl.col("_iso").is_null() & pl.col("_raw_country").is_null() \
        & pl.col("_intl")
    # ...or from the address when its last comma-separated part names a country
    address_country = (pl.col("address").str.split(",").list.last().str.to_lowercase()
                       .str.replace_all(vocab.COUNTRY_KEY_STRIP, "")
                       .replace_strict(countries, default=None, return_dtype=pl.String))
    no_country = pl.col("_iso").is_null() & pl.col("_raw_country").is_null()
    df = df.with_columns(
        pl.when(needs_inference).then(prefix_region).otherwise(None).alias("_inferred"),
        pl.when(no_country & pl.col("address").str.contains(",")).then(address_country)
        .otherwise(None).alias("_from_address"))
    df = df.with_columns(
        pl.when(pl.col("_inferred").is_null()).then(pl.col("_from_address"))
        .otherwise(None).alias("_from_address"))
    df = df.with_columns(pl.coalesce("_iso", "_inferred", "_from_address").alias("_iso"))
    df = df.with_columns(
        pl.col("_iso").replace_strict(codes, default=None, return_dtype=pl.String).alias("_cc"),
        pl.col("_iso").is_in(list(vocab.KEEP_LEADING_ZERO)).alias("_keep0"))
    cc, dlen = pl.col("_cc"), pl.col("_dlen")
    national = pl.when(pl.col("_keep0")).then(d).otherwise(d.str.strip_prefix("0"))
    e164 = (
        pl.when(pl.col("_intl")).then(pl.lit("+") + pl.col("_intl_digits"))
        .when((cc == "1") & (dlen == 11) & d.str.starts_with("1")).then(pl.lit("+") + d)
        .when(cc.is_not_null() & (dlen > 10) & d.str.starts_with(cc)).then(pl.lit("+") + d)
        .when(cc.is_not_null()).then(pl.lit("+") + cc + national)
    )
    df = df.with_columns(e164.alias("_e164"))
    # E.164 only when the numbering plan of its calling code allows it; otherwise the digits
    # as written stay, and validation flags them (ContactNormalized.phone_valid)
    phone = (pl.when(d.is_null() | (dlen == 0)).then(None)
             .when(pl.col("_e164").str.contains(phones.valid_e164_pattern()))
             .then(pl.col("_e164")).otherwise(d))
    year = pl.col("_parsed").dt.year()
    created = pl.when(year.is_between(vocab.DATE_MIN_YEAR, vocab.DATE_MAX_YEAR)) \
        .then(pl.col("_parsed")).otherwise(None)
    status = pl.col("_status_key").replace_strict(vocab.STATUS_SYNONYMS, default="unknown",
                                                  return_dtype=pl.String)
    df = df.with_columns(phone.alias("phone"), created.alias("created_date"),
                         status.alias("status"), pl.col("_iso").alias("country"))
    df = df.with_columns(
        pl.concat_list([
            _warn(pl.col("_raw_country").is_not_null() & pl.col("_iso").is_null(),
                  pl.format("country: unrecognized '{}'", pl.col("_raw_country"))),
            _warn(pl.col("_inferred").is_not_null(),
                  pl.format("country: inferred {} from phone prefix", pl.col("_iso"))),
            _warn(pl.col("_from_address").is_not_null(),
                  pl.format("country: inferred {} from address", pl.col("_iso"))),
            _warn(pl.col("_raw_date").is_not_null() & pl.col("_parsed").is_null(),
                  _around(vocab.DATE_UNPARSEABLE, "_raw_date")),
            _warn(pl.col("_parsed").is_not_null() & pl.col("created_date").is_null(),
                  _around(vocab.DATE_OUT_OF_RANGE, "_raw_date")),
            _warn(pl.col("_status_key").is_not_null()
                  & ~pl.col("_status_key").is_in(list(vocab.STATUS_SYNONYMS)),
                  pl.format("status: unrecognized '{}'", pl.col("_status_key"))),
        ]).list.drop_nulls().alias(WARNINGS),
    )
    return df.drop(pl.selectors.starts_with("_") - pl.selectors.by_name(WARNINGS))
