"""Ledger domain errors; api/errors.py maps them to HTTP envelopes, the CLI prints them."""

from __future__ import annotations


class LedgerError(Exception):
    """Base class: the message is safe to show to the caller."""


class NotFound(LedgerError):
    pass


class UserNotFound(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"User not found: {ref}")


class KeyNotFound(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"API key not found: {ref}")


class UserExists(LedgerError):
    def __init__(self, email: str) -> None:
        super().__init__(f"A user with email {email} already exists")


class InvalidInput(LedgerError):
    """Bad admin input (amount, e-mail, date)."""


class InvalidApiKey(LedgerError):
    def __init__(self) -> None:
        super().__init__("Invalid API key")


class MissingApiKey(InvalidApiKey):
    def __init__(self) -> None:
        LedgerError.__init__(self, "Missing API key: send it in the X-API-Key header")


class ApiKeyRevoked(LedgerError):
    def __init__(self, key_id: str | None = None, user_id: str | None = None) -> None:
        super().__init__("API key has been revoked")
        self.key_id = key_id  # lets the usage log attribute the refused request
        self.user_id = user_id


class InsufficientCredits(LedgerError):
    def __init__(self, required: int, available: int) -> None:
        self.required = required
        self.available = available
        super().__init__(f"Insufficient credits. Required: {required}, Available: {available}")


class IdempotencyConflict(LedgerError):
    """The same Idempotency-Key was used for a different request."""

    def __init__(self) -> None:
        super().__init__("Idempotency-Key was already used for a different request")
