"""Lookup tables and patterns used by normalization (plain data, engine-neutral)."""

from __future__ import annotations

import functools
import re

import phonenumbers
import pycountry

from creditlake.schema import STATUSES

# Extra country spellings seen in exports, on top of pycountry's names and codes.
_COUNTRY_ALIASES = {
    "usa": "US", "us": "US", "unitedstates": "US", "unitedstatesofamerica": "US", "america": "US",
    "uk": "GB", "greatbritain": "GB", "britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "northernireland": "GB", "unitedkingdom": "GB",
    "deutschland": "DE", "allemagne": "DE", "espana": "ES", "españa": "ES", "italia": "IT",
    "france": "FR", "nederland": "NL", "holland": "NL", "thenetherlands": "NL",
    "schweiz": "CH", "suisse": "CH", "osterreich": "AT", "österreich": "AT",
    "brasil": "BR", "mexico": "MX", "méxico": "MX", "russia": "RU", "southkorea": "KR",
    "korea": "KR", "northkorea": "KP", "vietnam": "VN", "iran": "IR", "syria": "SY",
    "bolivia": "BO", "venezuela": "VE", "tanzania": "TZ", "moldova": "MD", "laos": "LA",
    "czechrepublic": "CZ", "czechia": "CZ", "ivorycoast": "CI", "uae": "AE",
    "turkey": "TR", "türkiye": "TR", "taiwan": "TW", "macedonia": "MK", "palestine": "PS",
}
_NON_ALNUM = re.compile(r"[^0-9a-zà-ÿ]+")


COUNTRY_KEY_STRIP = _NON_ALNUM.pattern  # removed from lower-cased spellings before lookup
# Phone extensions ("ext. 12", "x12", "#12") are cut before digits are extracted (no case).
PHONE_EXTENSION_PATTERN = r"\s*(ext\.?|x|#)\s*\d{1,6}$"
# "+44 (0)20 ...": the trunk prefix shown in brackets is not dialled after a country code.
PHONE_BRACKETED_TRUNK = r"\(\s*0\s*\)"
# ISO datetimes keep only their date part before date parsing.
ISO_DATETIME_PATTERN = r"^(\d{4}-\d{2}-\d{2})[T ].*$"
# Characters stripped around e-mails ("<a@b.co>", quoted exports).
EMAIL_STRIP_CHARS = "<>\"' "


def country_key(value: str) -> str:
    """The lookup key for a country spelling: lowercase, no spaces/punctuation."""
    return _NON_ALNUM.sub("", value.strip().lower())


@functools.cache
def country_table() -> dict[str, str]:
    """country_key(spelling) -> ISO 3166-1 alpha-2."""
    table: dict[str, str] = {}
    for c in pycountry.countries:
        for spelling in (c.alpha_2, c.alpha_3, c.name, getattr(c, "common_name", None),
                         getattr(c, "official_name", None)):
            if spelling:
                table[country_key(spelling)] = c.alpha_2
    table.update(_COUNTRY_ALIASES)
    return table


@functools.cache
def calling_codes() -> dict[str, str]:
    """ISO alpha-2 -> international calling code digits ("GB" -> "44")."""
    out = {}
    for region in phonenumbers.SUPPORTED_REGIONS:
        code = phonenumbers.country_code_for_region(region)
        if code:
            out[region] = str(code)
    return out


@functools.cache
def calling_code_regions() -> dict[str, str]:
    """Calling code -> the region a number with that prefix is assumed to be from (for
    inferring a missing country); shared codes go to their main region (+1 -> US)."""
    out = {code: region for region, code in sorted(calling_codes().items(), reverse=True)}
    out.update({"1": "US", "44": "GB", "7": "RU", "61": "AU", "39": "IT"})
    return out


# National trunk prefix stripped before prefixing the calling code (most countries: "0").
# NANP countries (+1) use "1" as trunk prefix on 11-digit numbers; Italy keeps its leading 0.
KEEP_LEADING_ZERO = frozenset({"IT", "SM", "VA"})

# Status vocabulary: source spellings (lowercased, trimmed) -> master status.
STATUS_SYNONYMS: dict[str, str] = {}
for _target, _words in {
    "active": ("active", "enabled", "1", "true", "yes", "y", "a", "live", "current", "open",
               "verified", "aktiv", "actif", "ok"),
    "inactive": ("inactive", "disabled", "0", "false", "no", "n", "i", "dormant", "lapsed",
                 "expired", "inaktiv", "inactif"),
    "pending": ("pending", "new", "unverified", "invited", "onboarding", "trial", "p"),
    "suspended": ("suspended", "blocked", "banned", "locked", "frozen", "on hold", "hold"),
    "deleted": ("deleted", "removed", "closed", "cancelled", "canceled", "churned", "d"),
    "unknown": ("unknown", "", "n/a", "na", "none", "null", "-", "?"),
}.items():
    for _w in _words:
        STATUS_SYNONYMS[_w] = _target
assert set(STATUS_SYNONYMS.values()) <= set(STATUSES)

# Date formats tried in order (first match wins). US month-first before day-first: an
# unambiguous day > 12 falls through to the day-first format. Per-source overrides can pin one.
DATE_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d",
    "%m/%d/%Y", "%d/%m/%Y", "%m-%d-%Y", "%d-%m-%Y", "%d.%m.%Y",
    "%d %b %Y", "%d %B %Y", "%b %d %Y", "%B %d %Y", "%b %d, %Y", "%B %d, %Y",
    "%m/%d/%y", "%d/%m/%y",
)
# Datetime strings: the date part is the first 10 chars when they look like ISO dates.
ISO_DATETIME_PREFIX = r"^\d{4}-\d{2}-\d{2}[T ]"
# A kept date must fit the stage and `records` columns, ClickHouse `Date` (1970-01-01 ..
# 2149-06-06): an earlier year is dropped with its finding instead of failing the file's insert.
DATE_MIN_YEAR, DATE_MAX_YEAR = 1970, 2100
DATE_RANGE = f"{DATE_MIN_YEAR}-01-01..{DATE_MAX_YEAR}-12-31"
# The findings of a created_date that is dropped: (prefix, suffix) around the value as written
DATE_UNPARSEABLE = ("created_date: unparseable '", "'")
DATE_OUT_OF_RANGE = ("created_date: out of range '", f"' (kept: {DATE_RANGE})")

# E-mail syntax (after lower-casing): dot-separated local part (no leading, trailing or double
# dots), "@", a domain of at least two labels that neither start nor end with "-", a letters-only
# top-level label; no spaces anywhere. Linear in Rust regex/RE2, no nested ambiguity for Java.
EMAIL_PATTERN = (r"^[a-z0-9_%+'-]+(\.[a-z0-9_%+'-]+)*"
                 r"@([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$")
# Values that mean "no value" in exports.
NULL_TOKENS: tuple[str, ...] = ("", "null", "none", "n/a", "na", "nan", "-", "--", "nil",
                                "\\n", "undefined", "#n/a")
# The same tokens in the case variants seen in exports (a membership test is cheaper than
# lower-casing every value first).
NULL_TOKEN_SPELLINGS: list[str] = sorted({v for t in NULL_TOKENS
                                          for v in (t, t.upper(), t.title(), t.capitalize())})

FREE_TEXT = frozenset({"name", "address", "city"})  # inner whitespace collapsed too
WARNINGS = "_warnings"  # the compilers' column of per-row findings, read by validation
