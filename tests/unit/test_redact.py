"""Passwords in URLs are hidden wherever the URL sits in a text."""

import pytest

from creditlake.redact import redact


@pytest.mark.parametrize(("text", "shown"), [
    ("cannot reach ClickHouse at http://default:s3cr%40t@ch:8123/db: refused",
     "cannot reach ClickHouse at http://default:***@ch:8123/db: refused"),
    ("postgresql+psycopg://postgres:pw@db:5432/x", "postgresql+psycopg://postgres:***@db:5432/x"),
    ("https://ch:8443/?user=u&password=s3cret&secure=1", "https://ch:8443/?user=u&password=***&secure=1"),
    ("two: http://a:b@h1 and redis://:c@h2/0", "two: http://a:***@h1 and redis://:***@h2/0"),
])
def test_passwords_are_hidden(text, shown):
    assert redact(text) == shown


@pytest.mark.parametrize("text", ["http://ch:8123/db", "chdb:///tmp/clickhouse",
                                  "http://user@ch:8123", "mail ann:x@example.org"])
def test_text_without_a_password_is_unchanged(text):
    assert redact(text) == text
