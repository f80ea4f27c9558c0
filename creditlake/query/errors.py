"""Query validation errors: every one maps to HTTP 400 INVALID_QUERY with this message."""

from __future__ import annotations


class InvalidQuery(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
