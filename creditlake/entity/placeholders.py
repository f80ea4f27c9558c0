"""Placeholder values that must never act as identity evidence.

"test@test.com" or "000-000-0000" shared by thousands of unrelated people would glue them
into one giant cluster if they took part in blocking or scored as an exact match. They are
nulled before linking; values shared by implausibly many records are nulled too (see
`frequent_values` in resolve.py, computed over the whole table in ClickHouse).
"""

from __future__ import annotations

# Compared after lower-casing and trimming. Emails are also caught by the patterns below.
NULL_TOKENS: tuple[str, ...] = (
    "", "n/a", "na", "n.a.", "none", "null", "nil", "unknown", "unk", "-", "--", "?", "x",
    "xxx", "test", "tbd", "not available", "not provided", "no name", "noname", "anonymous",
    "nobody", "undefined", "missing", "blank", "0",
)
# Email local parts / domains that say "no real address here".
PLACEHOLDER_EMAIL_LOCAL = (
    r"^(test|testing|noemail|no-?reply|none|null|na|n/?a|unknown|fake|dummy|asdf|example|"
    r"email|mail|user|abc|xxx+|a)$"
)
PLACEHOLDER_EMAIL_DOMAIN = (
    r"^(test\.com|example\.(com|org|net)|email\.com|mail\.com|noemail\.com|none\.com|"
    r"nomail\.com|fake\.com|invalid|localhost|domain\.com|xxx\.com|test\.test)$"
)
# Phone digits: all one digit, sequences, too short to identify anyone.
# (RE2, as in DuckDB/ClickHouse/Spark: no back-references, so repeated digits are spelled out.)
PLACEHOLDER_PHONE = (
    r"^(0+|1+|2+|3+|4+|5+|6+|7+|8+|9+)$|^0*1234567890?$|^9876543210?$|^0+1$|^\d{0,5}$"
)
# Fields that identify a person on their own: a value shared by more records than this is
# treated as a placeholder (a real email/phone/user id is not shared by 50 people).
MAX_VALUE_FREQUENCY_DEFAULT = 50
