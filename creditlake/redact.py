"""Credentials out of text shown to people: `scheme://user:secret@host` becomes
`scheme://user:***@host` and `password=secret` in a query string `password=***`, wherever the
URL sits in the text (an error message, a log line, a traceback)."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*):(?P<secret>[^@/\s]+)@", re.I)
_PARAM = re.compile(r"(?P<head>[?&](?:password|passwd|pwd)=)(?P<secret>[^&#\s]+)", re.I)


def redact(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***."""
    return _PARAM.sub(r"\g<head>***", _USERINFO.sub(r"\g<head>:***@", text))
