"""The credit ledger: users, API keys, expiring grants, atomic debits, usage logs."""

from creditlake.ledger.credits import credit_cost
from creditlake.ledger.errors import (
    ApiKeyRevoked,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidApiKey,
    InvalidInput,
    KeyNotFound,
    LedgerError,
    MissingApiKey,
    NotFound,
    UserExists,
    UserNotFound,
)
from creditlake.ledger.service import (
    ChargeResult,
    GrantInfo,
    KeyInfo,
    Ledger,
    NewKey,
    Replay,
    UsageRecord,
    UserInfo,
    to_utc_naive,
    utcnow,
)

__all__ = [
    "ApiKeyRevoked", "ChargeResult", "GrantInfo", "IdempotencyConflict", "InsufficientCredits",
    "InvalidApiKey", "InvalidInput", "KeyInfo", "KeyNotFound", "Ledger", "LedgerError",
    "MissingApiKey", "NewKey", "NotFound", "Replay", "UsageRecord", "UserExists", "UserInfo",
    "UserNotFound", "credit_cost", "to_utc_naive", "utcnow",
]
