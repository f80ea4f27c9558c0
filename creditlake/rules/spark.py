"""Rules -> PySpark column expressions: the Spark counterpart of engines/polars.py and
validation.py, compiled from the same rule data (creditlake.rules.vocab tables and patterns,
rules.identity for record_hash, the ContactNormalized checks' patterns).

Spark replaces the CPU-heavy *normalize* stage (clean + validate + hash). Landing (format
readers, header mapping) and the *load* stage (dedup in ClickHouse SQL + ingestion_log) are
shared with the embedded path, so counts are reconciled by the same code on both paths:

    land (Python readers) -> landed.arrow -> Parquet -> Spark clean/validate/hash -> Parquet
      -> batched inserts into the ClickHouse stage table -> the load stage (unchanged)

Regex dialect: Polars uses Rust regex (Unicode-aware \\s \\d), Spark uses java.util.regex;
patterns get the (?U) flag so both mean the same classes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812 - the conventional alias

from creditlake.rules import phones, vocab
from creditlake.rules.identity import LOWERCASED, SEPARATOR
from creditlake.rules.validation import SCORED_FIELDS
from creditlake.rules.vocab import FREE_TEXT, WARNINGS
from creditlake.schema import IDENTITY_FIELDS, SOURCE_FIELDS

# The rule patterns of rules/vocab.py in Java regex dialect ((?U): Unicode \s and \d).
PHONE_EXTENSION = "(?iU)" + vocab.PHONE_EXTENSION_PATTERN
ISO_DATETIME = "(?U)" + vocab.ISO_DATETIME_PATTERN
COUNTRY_KEY_STRIP = vocab.COUNTRY_KEY_STRIP
_STRIP = re.escape(vocab.EMAIL_STRIP_CHARS)
EMAIL_STRIP = f"^[{_STRIP}]+|[{_STRIP}]+$"  # Polars: strip_chars(vocab.EMAIL_STRIP_CHARS)
WS_STRIP = r"(?U)^\s+|\s+$"

# strftime (chrono) -> Spark datetime pattern. Single letters where chrono accepts 1-2 digits
# (and variable-width years); fixed widths only where fields are not separated.
_STRFTIME = {"%Y": "y", "%m": "M", "%d": "d", "%b": "MMM", "%B": "MMMM", "%y": "yy"}
_STRFTIME_FIXED = {"%Y": "yyyy", "%m": "MM", "%d": "dd"}


def spark_date_pattern(fmt: str) -> str:
    fixed = "%Y%m%d" in fmt
    out, i = "", 0
    while i < len(fmt):
        tok = fmt[i:i + 2]
        if tok in _STRFTIME:
            out += (_STRFTIME_FIXED.get(tok) if fixed else None) or _STRFTIME[tok]
            i += 2
        else:
            ch = fmt[i]
            out += f"'{ch}'" if ch.isalpha() else ch
            i += 1
    return out


_GUARD = {"%Y": r"\d+", "%m": r"\d{1,2}", "%d": r"\d{1,2}", "%y": r"\d{2}",
          "%b": "[A-Za-z]+", "%B": "[A-Za-z]+"}


def date_guard(fmt: str) -> str:
    """A cheap regex every string that `fmt` can parse matches: a failed parse costs Spark an
    exception, so each format is only tried on values of its shape."""
    if "%Y%m%d" in fmt:
        return "^" + re.escape(fmt).replace("%Y%m%d", r"\d{8}") + "$"
    out, i = "", 0
    while i < len(fmt):
        tok = fmt[i:i + 2]
        if tok in _GUARD:
            out += _GUARD[tok]
            i += 2
        else:
            out += re.escape(fmt[i])
            i += 1
    return f"^{out}$"


def session(app_name: str = "creditlake", master: str | None = None,
            conf: Mapping[str, str] | None = None) -> SparkSession:
    """A SparkSession with the settings the rules rely on (UTC, CORRECTED date parsing)."""
    builder = SparkSession.builder.appName(app_name)
    if master or not os.environ.get("SPARK_REMOTE"):
        builder = builder.master(master or "local[2]")
    defaults = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.legacy.timeParserPolicy": "CORRECTED",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    }
    for k, v in {**defaults, **(conf or {})}.items():
        builder = builder.config(k, v)
    return builder.getOrCreate()


def _map(table: Mapping[str, str]) -> Column:
    return F.create_map(*[F.lit(x) for kv in sorted(table.items()) for x in kv])


def _lookup(table: Column, key: Column) -> Column:
    return F.try_element_at(table, key)


def _strip(col: Column) -> Column:
    return F.regexp_replace(col, WS_STRIP, "")


def _text(col: Column, collapse: bool) -> Column:
    text = col.cast("string")
    text = _strip(F.regexp_replace(text, r"(?U)\s+", " ") if collapse else text)
    return F.when(text.isin(vocab.NULL_TOKEN_SPELLINGS), F.lit(None)).otherwise(text)


def parse_date(col: Column, date_format: str | None = None) -> Column:
    """First format that parses wins (same order as vocab.DATE_FORMATS)."""
    col = F.regexp_replace(col, ISO_DATETIME, "$1")
    formats = (date_format,) if date_format else vocab.DATE_FORMATS
    return F.coalesce(*[F.when(col.rlike(date_guard(f)), F.try_to_date(col, spark_date_pattern(f)))
                        for f in formats])


def _lookup_table(spark: SparkSession, name: str, table: Mapping[str, str]) -> DataFrame:
    """A small lookup DataFrame (broadcast in joins). Joins instead of a literal map: a
    ~1000-entry map literal makes every plan analysis slow."""
    return spark.createDataFrame(sorted(table.items()), f"{name}_key string, {name} string")


def clean(df: DataFrame, *, default_country: str | None = None,
          date_format: str | None = None) -> DataFrame:
    """engines.polars.clean for Spark: same outputs, same `_warnings` strings."""
    countries = _lookup_table(df.sparkSession, "_iso", vocab.country_table())
    codes = vocab.calling_codes()
    regions = _map(vocab.calling_code_regions())
    cc_map = _map(codes)
    statuses = _map(vocab.STATUS_SYNONYMS)

    df = df.select(*[c for c in df.columns if c not in SOURCE_FIELDS],
                   *[_text(F.col(c), c in FREE_TEXT).alias(c) for c in SOURCE_FIELDS])
    raw_country = F.col("country")
    df = df.withColumn("_iso_key", F.regexp_replace(F.lower(raw_country), COUNTRY_KEY_STRIP, ""))
    df = df.join(F.broadcast(countries), "_iso_key", "left")
    iso = F.col("_iso")
    if default_country:
        iso = F.when(raw_country.isNull(), F.lit(default_country)).otherwise(iso)
    email = F.regexp_replace(F.lower(F.col("email")), "^mailto:", "")
    raw_phone = F.regexp_replace(F.regexp_replace(F.col("phone"), PHONE_EXTENSION, ""),
                                 "(?U)" + vocab.PHONE_BRACKETED_TRUNK, "")
    df = df.withColumns({
        "_iso": iso, "_raw_country": raw_country,
        "email": F.regexp_replace(email, EMAIL_STRIP, ""),
        "_digits": F.regexp_replace(raw_phone, r"(?U)\D", ""),
        "_plus": _strip(raw_phone).startswith("+"),
        "_parsed": parse_date(F.col("created_date"), date_format),
        "_raw_date": F.col("created_date"),
        "_status_key": F.lower(F.col("status")),
    })
    d = F.col("_digits")
    df = df.withColumns({
        "_intl": F.col("_plus") | d.startswith("00"),
        "_intl_digits": F.when(F.col("_plus"), d).otherwise(F.substring(d, 3, 1 << 30)),
        "_dlen": F.char_length(d),
    })
    prefix_region = F.coalesce(*[_lookup(regions, F.substring(F.col("_intl_digits"), 1, n))
                                 for n in (3, 2, 1)])
    needs_inference = F.col("_iso").isNull() & F.col("_raw_country").isNull() & F.col("_intl")
    df = df.withColumn("_inferred", F.when(needs_inference, prefix_region))
    # ...or from the address when its last comma-separated part names a country
    no_country = F.col("_iso").isNull() & F.col("_raw_country").isNull()
    last_part = F.element_at(F.split(F.col("address"), ","), -1)
    df = df.withColumn("_addr_key", F.when(
        no_country & F.col("_inferred").isNull() & F.col("address").contains(","),
        F.regexp_replace(F.lower(last_part), COUNTRY_KEY_STRIP, "")))
    df = df.join(F.broadcast(countries.withColumnsRenamed(
        {"_iso_key": "_addr_key", "_iso": "_from_address"})), "_addr_key", "left")
    df = df.withColumn("_iso", F.coalesce("_iso", "_inferred", "_from_address"))
    df = df.withColumns({
        "_cc": _lookup(cc_map, F.col("_iso")),
        "_keep0": F.col("_iso").isin(list(vocab.KEEP_LEADING_ZERO)),
    })
    cc, dlen = F.col("_cc"), F.col("_dlen")
    national = F.when(F.col("_keep0"), d).otherwise(
        F.when(d.startswith("0"), F.substring(d, 2, 1 << 30)).otherwise(d))
    plus = F.lit("+")
    e164 = (
        F.when(F.col("_intl"), F.concat(plus, F.col("_intl_digits")))
        .when((cc == "1") & (dlen == 11) & d.startswith("1"), F.concat(plus, d))
        .when(cc.isNotNull() & (dlen > 10) & d.startswith(cc), F.concat(plus, d))
        .when(cc.isNotNull(), F.concat(plus, cc, national))
    )
    df = df.withColumn("_e164", e164)
    phone = (F.when(d.isNull() | (dlen == 0), F.lit(None))
             .when(F.col("_e164").rlike(phones.valid_e164_pattern()), F.col("_e164"))
             .otherwise(d))
    year = F.year("_parsed")
    created = F.when(year.between(vocab.DATE_MIN_YEAR, vocab.DATE_MAX_YEAR), F.col("_parsed"))
    status = F.coalesce(_lookup(statuses, F.col("_status_key")), F.lit("unknown"))
    df = df.withColumns({"phone": phone, "created_date": created, "status": status,
                         "country": F.col("_iso")})

    def warn(cond: Column, *parts: Column | str) -> Column:
        return F.when(cond, F.concat(*[F.lit(p) if isinstance(p, str) else p for p in parts]))

    known_status = F.col("_status_key").isin(list(vocab.STATUS_SYNONYMS))
    warnings = F.array(
        warn(F.col("_raw_country").isNotNull() & F.col("_iso").isNull(),
             "country: unrecognized '", F.col("_raw_country"), "'"),
        warn(F.col("_inferred").isNotNull(),
             "country: inferred ", F.col("_iso"), " from phone prefix"),
        warn(F.col("_from_address").isNotNull(),
             "country: inferred ", F.col("_iso"), " from address"),
        warn(F.col("_raw_date").isNotNull() & F.col("_parsed").isNull(),
             vocab.DATE_UNPARSEABLE[0], F.col("_raw_date"), vocab.DATE_UNPARSEABLE[1]),
        warn(F.col("_parsed").isNotNull() & F.col("created_date").isNull(),
             vocab.DATE_OUT_OF_RANGE[0], F.col("_raw_date"), vocab.DATE_OUT_OF_RANGE[1]),
        warn(F.col("_status_key").isNotNull() & ~known_status,
             "status: unrecognized '", F.col("_status_key"), "'"),
    )
    df = df.withColumn(WARNINGS, F.filter(warnings, lambda x: x.isNotNull()))
    return df.drop(*[c for c in df.columns if c.startswith("_") and c != WARNINGS])


# ContactNormalized's column checks as (column, check name, passes-when expression).
def _checks() -> list[tuple[str, str, Column]]:
    iso2 = sorted(set(vocab.country_table().values()))
    return [
        ("email", "email_format", F.col("email").rlike(vocab.EMAIL_PATTERN)),
        ("name", "name_has_letters", F.col("name").rlike(r"\p{L}")),
        ("phone", "phone_valid", F.col("phone").rlike(phones.valid_e164_pattern())),
        ("country", "iso_country", F.col("country").isin(iso2)),
    ]


def validate(df: DataFrame) -> DataFrame:
    """validation.validate for Spark: adds validation_errors, data_quality_score and _fatal.

    Message order inside validation_errors: column findings, identity, then the cleaning
    warnings (Pandera does not promise an order among column findings; compare as sets)."""
    checks = _checks()
    failed = {col: F.col(col).isNotNull() & ~ok for col, _, ok in checks}
    email_ok = F.coalesce(F.col("email").rlike(vocab.EMAIL_PATTERN), F.lit(False))
    phone_ok = F.coalesce(
        F.char_length(F.regexp_replace(F.col("phone"), r"(?U)\D", "")) >= 7, F.lit(False))
    fatal = ~(email_ok | phone_ok | F.col("user_id").isNotNull())
    messages = [F.when(failed[col], F.concat(F.lit(f"{col}: {name} failed for '"),
                                             F.col(col), F.lit("'")))
                for col, name, _ in checks]
    messages.append(F.when(fatal, F.lit("identity: no usable email, phone or user_id")))
    present = [
        (F.col(f).isNotNull()
         & ((F.col(f) != "unknown") if f == "status" else F.lit(True))
         & ~failed.get(f, F.lit(False))).cast("float")
        for f in SCORED_FIELDS
    ]
    score = (sum(present[1:], present[0]) / F.lit(float(len(SCORED_FIELDS)))).cast("float")
    errors = F.concat(F.filter(F.array(*messages), lambda x: x.isNotNull()), F.col(WARNINGS))
    return df.withColumns({"data_quality_score": score, "validation_errors": errors,
                           "_fatal": fatal}).drop(WARNINGS)


def record_hash() -> Column:
    """rules.identity.clickhouse_hash_sql for Spark: Unicode lower-casing on both sides
    (ClickHouse lowerUTF8, Spark lower), so "ZOË" and "zoë" are one identity."""
    parts = []
    for f in IDENTITY_FIELDS:
        c = F.coalesce(F.col(f), F.lit(""))
        parts.append(F.lower(c) if f in LOWERCASED else c)
    return F.md5(F.concat_ws(SEPARATOR, *parts))


RAW_PREFIX = "raw__"


def keep_raw(df: DataFrame) -> DataFrame:
    """Copies of the landed text fields (clean() rewrites them) for rejected rows' raw_row."""
    return df.withColumns({f"{RAW_PREFIX}{c}": F.col(c) for c in SOURCE_FIELDS})


def raw_row() -> Column:
    """normalize.polars.rejected_rows' raw_row from keep_raw()'s copies: landed text fields as JSON
    (nulls kept) + metadata. Only evaluated for rejected rows (inside a CASE WHEN)."""
    body = F.to_json(F.struct(*[F.col(f"{RAW_PREFIX}{c}").alias(c) for c in SOURCE_FIELDS]),
                     {"ignoreNullFields": "false"})
    return F.concat(body.substr(F.lit(1), F.length(body) - 1), F.lit(',"metadata":'),
                    F.col("metadata"), F.lit("}"))


# ------------------------------------------------------------------ I/O helpers
