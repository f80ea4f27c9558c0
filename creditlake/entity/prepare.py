"""Turn `records` rows (Arrow) into the normalized feature table Splink links on.

One DuckDB SQL statement, vectorized: no per-row Python. The same prepared table feeds the
DuckDB and the Spark Splink backends, so both paths link identical inputs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import duckdb
import pyarrow as pa

from creditlake.entity import duck
from creditlake.entity.placeholders import (
    NULL_TOKENS,
    PLACEHOLDER_EMAIL_DOMAIN,
    PLACEHOLDER_EMAIL_LOCAL,
    PLACEHOLDER_PHONE,
)

# Columns read from ClickHouse `records`.
RECORD_INPUT_COLUMNS: tuple[str, ...] = (
    "id", "email", "name", "phone", "address", "city", "country", "created_date",
    "user_id", "source_file", "ingested_at", "metadata",
)
# Columns of the prepared table (the Splink input). unique_id is the record id.
FEATURE_COLUMNS: tuple[str, ...] = (
    "unique_id", "first_name", "surname", "dob", "email", "phone", "address", "city",
    "postcode", "user_id",
)
# Unmapped source columns land in `metadata` under the source's own names; these
# (normalized: lower-case, alphanumerics only) carry a birth date / postcode / city.
METADATA_KEYS: dict[str, tuple[str, ...]] = {
    "dob": ("dob", "dateofbirth", "birthdate", "birthday", "born", "bdate", "geburtsdatum",
            "datenaissance", "birth"),
    "postcode": ("postcode", "zip", "zipcode", "postalcode", "postal", "plz", "pincode",
                 "cp", "codepostal", "postcodezip"),
    "city": ("suburb", "town", "locality", "municipality", "city", "place"),
}
DOB_FORMATS: tuple[str, ...] = ("%Y%m%d", "%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y",
                                "%Y/%m/%d", "%d-%m-%Y")
ADDRESS_ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    ("st", "street"), ("rd", "road"), ("ave", "avenue"), ("av", "avenue"), ("dr", "drive"),
    ("ln", "lane"), ("ct", "court"), ("pl", "place"), ("cres", "crescent"), ("blvd",
    "boulevard"), ("hwy", "highway"), ("sq", "square"), ("cct", "circuit"), ("tce", "terrace"),
)


# ClickHouse: the light normalization each identifying field's frequency is counted in.
FREQUENT_KEYS: dict[str, str] = {
    "email": "lower(trim({}))",
    "phone": "right(replaceRegexpAll({}, '[^0-9]', ''), 9)",
    "user_id": "lower(trim({}))",
}


def frequent_values_sql(table: str, n: int, among: dict[str, str] | None = None) -> str:
    """ClickHouse: values of identifying fields shared by more than `n` records of `table`
    (placeholders), as (field, value).

    `among`: per field, a subquery of raw values (e.g. a batch's): only those are counted.
    Restricting the count to a batch's few values is half the CPU of counting every value.
    """
    parts = []
    for field, norm in FREQUENT_KEYS.items():
        only = f" AND v IN (SELECT {norm.format('v')} FROM ({among[field]}))" if among else ""
        parts.append(
            f"SELECT '{field}' AS field, v AS value FROM (\n"
            f"    SELECT {norm.format(field)} AS v, count() AS c FROM {table}"
            f" WHERE v != ''{only} GROUP BY v HAVING c > {int(n)})")
    return "\nUNION ALL\n".join(parts)


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _meta(field: str) -> str:
    """Value of the first metadata key that normalizes to one of METADATA_KEYS[field]."""
    keys = _sql_list(METADATA_KEYS[field])
    pos = f"list_position(list_transform(meta_nkeys, lambda k: k IN ({keys})), true)"
    return (f"CASE WHEN {pos} > 0 THEN nullif(trim(json_extract_string(meta,"
            f" '$.\"' || replace(meta_keys[{pos}], '\"', '') || '\"')), '') END")


def _null_tokens() -> list[str]:
    """NULL_TOKENS as they look after cleaning too ("n/a" -> "n a")."""
    cleaned = {" ".join(re.sub(r"[^a-z0-9 ]", " ", t).split()) for t in NULL_TOKENS}
    return sorted(set(NULL_TOKENS) | cleaned)


def _clean_text(expr: str, join: str = "") -> str:
    """lower, accents stripped, punctuation to spaces, whitespace collapsed, tokens nulled.

    Characters in `join` are deleted instead ("O'Brien" -> "obrien" for names).
    """
    src = f"strip_accents(lower(coalesce({expr}, '')))"
    if join:
        chars = join.replace("'", "''")
        src = f"regexp_replace({src}, '[{chars}]', '', 'g')"
    cleaned = (
        f"trim(regexp_replace(regexp_replace({src},"
        " '[^a-z0-9 ]', ' ', 'g'), '\\s+', ' ', 'g'))"
    )
    # list_filter over a one-element list evaluates `cleaned` once (a CASE would twice).
    tokens = _sql_list(_null_tokens())
    return f"nullif(list_filter([{cleaned}], lambda c: c NOT IN ({tokens}))[1], '')"


def _address(expr: str) -> str:
    """Cleaned address with street-type abbreviations expanded, one map lookup per token."""
    pairs = ", ".join(f"'{short}': '{long}'" for short, long in ADDRESS_ABBREVIATIONS)
    return (
        f"nullif(array_to_string(list_transform(string_split(coalesce({_clean_text(expr)}, ''),"
        f" ' '), lambda t: coalesce(map_extract_value(MAP {{{pairs}}}, t), t)), ' '), '')"
    )


def prepare_sql(source: str, frequent: str | None = None) -> str:
    """SQL selecting the feature table from `source` (a relation with RECORD_INPUT_COLUMNS).

    `frequent` names a relation (field, value) of values to treat as placeholders, in the
    light normalization `frequent_values_sql` computes in ClickHouse (lower/trim; phones:
    last 9 digits), so the frequency can be counted over the whole table engine-side.
    """
    dob_formats = "[" + _sql_list(DOB_FORMATS) + "]"
    freq = (
        f"(SELECT value FROM {frequent} WHERE field = '{{f}}')" if frequent else None
    )

    def not_frequent(field: str, expr: str) -> str:
        if freq is None:
            return expr
        return f"CASE WHEN {expr} IN {freq.format(f=field)} THEN NULL ELSE {expr} END"

    return f"""
WITH base AS (
    SELECT
        CAST(id AS VARCHAR) AS unique_id,
        name, email, phone, address, city, user_id,
        CASE WHEN json_valid(metadata) AND starts_with(ltrim(metadata), '{{')
             THEN metadata ELSE '{{}}' END AS meta
    FROM {source}
), metas AS (
    SELECT *, json_keys(meta) AS meta_keys,
        list_transform(json_keys(meta), lambda k: regexp_replace(lower(k), '[^a-z0-9]', '', 'g'))
            AS meta_nkeys
    FROM base
), names AS (
    SELECT *,
        -- "Surname, Given" puts the surname first; otherwise it is the last token.
        contains(coalesce(name, ''), ',') AS comma_name,
        list_filter(string_split(coalesce({_clean_text("name", join="'`’-")}, ''), ' '),
                    lambda t: t <> '' AND t NOT IN ({_sql_list(NULL_TOKENS)})) AS tokens_raw
    FROM metas
), emails AS (
    SELECT *,
        nullif(lower(trim(coalesce(email, ''))), '') AS email_raw,
        nullif(lower(trim(coalesce(user_id, ''))), '') AS user_id_raw,
        regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g') AS phone_digits,
        {_meta("dob")} AS dob_raw,
        {_meta("postcode")} AS postcode_raw,
        {_meta("city")} AS city_meta
    FROM names
), phones AS (
    SELECT *, nullif(right(phone_digits, 9), '') AS phone_raw FROM emails
), feats AS (
    SELECT
        unique_id,
        CASE WHEN len(tokens_raw) < 2 THEN NULL
             WHEN comma_name THEN tokens_raw[2] ELSE tokens_raw[1] END AS first_name_c,
        CASE WHEN comma_name THEN tokens_raw[1]
             ELSE tokens_raw[len(tokens_raw)] END AS surname_c,
        CASE WHEN email_raw IS NULL OR NOT regexp_matches(email_raw, '^[^@\\s]+@[^@\\s]+$')
                  OR regexp_matches(split_part(email_raw, '@', 1), '{PLACEHOLDER_EMAIL_LOCAL}')
                  OR regexp_matches(split_part(email_raw, '@', 2), '{PLACEHOLDER_EMAIL_DOMAIN}')
             THEN NULL ELSE email_raw END AS email_c,
        CASE WHEN phone_raw IS NULL OR regexp_matches(phone_digits, '{PLACEHOLDER_PHONE}')
             THEN NULL ELSE phone_raw END AS phone_c,
        coalesce(strftime(try_strptime(trim(dob_raw), {dob_formats}), '%Y-%m-%d'),
                 nullif(regexp_replace(coalesce(dob_raw, ''), '[^0-9]', '', 'g'), '')) AS dob,
        {_address("address")} AS address,
        coalesce({_clean_text("city")}, {_clean_text("city_meta")}) AS city,
        nullif(upper(regexp_replace(coalesce(postcode_raw, ''), '[^A-Za-z0-9]', '', 'g')), '')
            AS postcode,
        {_clean_text("user_id")} AS user_id_c,
        email_raw, phone_raw, user_id_raw
    FROM phones
)
SELECT
    unique_id,
    first_name_c AS first_name,
    surname_c AS surname,
    dob,
    CASE WHEN {not_frequent("email", "email_raw")} IS NULL THEN NULL ELSE email_c END AS email,
    CASE WHEN {not_frequent("phone", "phone_raw")} IS NULL THEN NULL ELSE phone_c END AS phone,
    address, city, postcode,
    CASE WHEN {not_frequent("user_id", "user_id_raw")} IS NULL THEN NULL ELSE user_id_c END
        AS user_id
FROM feats
"""


def prepare(records: pa.Table, frequent: pa.Table | None = None,
            con: duckdb.DuckDBPyConnection | None = None) -> pa.Table:
    """Feature table for `records` (Arrow). `frequent`: (field, value) placeholders."""
    con = con or duck.connect()
    con.register("__records_in", records)
    frequent_name = None
    if frequent is not None and frequent.num_rows:
        con.register("__frequent_in", frequent)
        frequent_name = "__frequent_in"
    try:
        return con.sql(prepare_sql("__records_in", frequent_name)).to_arrow_table()
    finally:
        con.unregister("__records_in")
        if frequent_name:
            con.unregister(frequent_name)
