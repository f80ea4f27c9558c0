"""API key material: `sk_live_<random>` shown once, stored as SHA-256, short visible prefix."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "sk_live_"
VISIBLE_CHARS = 12  # "sk_live_" + 4 random chars, enough to tell keys apart in listings


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is safe (no dictionary to attack).
    return hashlib.sha256(key.encode()).hexdigest()


def visible_prefix(key: str) -> str:
    return key[:VISIBLE_CHARS]
