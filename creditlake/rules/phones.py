"""Phone numbering plans, compiled once from the `phonenumbers` metadata (plain data for every
backend: Polars, Spark and ClickHouse SQL use the same pattern string).

A number is valid when its E.164 form matches the general national-number pattern of a region
sharing its calling code. That pattern is libphonenumber's "possible national lengths and
leading digits" of the region (e.g. US `[2-9]\\d{9}`: ten digits, no leading 0 or 1; GB
`[1-357-9]\\d{9}|[18]\\d{8}|8\\d{6}`). It is not a check that the number is assigned.
"""

from __future__ import annotations

import functools

import phonenumbers
from phonenumbers import PhoneMetadata


@functools.cache
def numbering_plans() -> dict[str, tuple[str, ...]]:
    """Calling code -> national-number patterns of the regions using it (geographic and
    non-geographic, e.g. +800), in metadata order without repeats."""
    metas = [PhoneMetadata.metadata_for_region(r) for r in sorted(phonenumbers.SUPPORTED_REGIONS)]
    metas += [PhoneMetadata.metadata_for_nongeo_region(c)
              for c in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)]
    plans: dict[str, list[str]] = {}
    for meta in metas:
        pattern = meta.general_desc.national_number_pattern if meta else None
        if pattern:
            patterns = plans.setdefault(str(meta.country_code), [])
            if pattern not in patterns:
                patterns.append(pattern)
    return {code: tuple(p) for code, p in sorted(plans.items())}


@functools.cache
def valid_e164_pattern() -> str:
    """One anchored regex an E.164 string ("+" and digits) matches iff it is valid for its
    calling code. ASCII `[0-9]` instead of `\\d`: the input is ASCII digits already, and
    Unicode `\\d` makes the compiled program exceed Rust regex's (Polars) 10 MB size limit."""
    alternatives = "|".join(f"{code}(?:{'|'.join(p)})"
                            for code, p in numbering_plans().items())
    return (r"^\+(?:" + alternatives + ")$").replace(r"\d", "[0-9]")
