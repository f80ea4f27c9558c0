"""Operator functions shared by `creditlake admin …` and /api/v1/admin/…: same inputs, same
JSON-ready dicts, so the CLI and the API cannot drift apart."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from creditlake.ledger.service import GrantInfo, KeyInfo, Ledger, to_utc_naive


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def _grant(g: GrantInfo) -> dict[str, Any]:
    d = asdict(g)
    d["expires_at"], d["created_at"] = _iso(g.expires_at), _iso(g.created_at)
    return d


def create_user(ledger: Ledger, email: str, credits: int = 0, *, expires_at: Any = None,
                reason: str | None = None) -> dict[str, Any]:
    user, key = ledger.create_user(email, credits, expires_at=expires_at,
                                   reason=reason or "signup")
    assert key is not None
    return {"user_id": user.id, "email": user.email, "balance": user.balance,
            "api_key": key.api_key, "key_id": key.key_id, "key_prefix": key.prefix}


def add_credits(ledger: Ledger, user: str, amount: int, *, expires_at: Any = None,
                reason: str | None = None) -> dict[str, Any]:
    grant = ledger.add_credits(user, amount, expires_at=expires_at, reason=reason)
    u = ledger.get_user(user)
    return {"user_id": u.id, "email": u.email, "grant": _grant(grant), "balance": u.balance}


def balance(ledger: Ledger, user: str) -> dict[str, Any]:
    u = ledger.get_user(user)
    return {"user_id": u.id, "email": u.email, "balance": u.balance,
            "grants": [_grant(g) for g in ledger.grants(user)]}


def list_users(ledger: Ledger) -> dict[str, Any]:
    return {"users": [{"user_id": u.id, "email": u.email, "created_at": _iso(u.created_at),
                       "balance": u.balance} for u in ledger.list_users()]}


def _key(k: KeyInfo) -> dict[str, Any]:
    return {"key_id": k.id, "key_prefix": k.prefix, "created_at": _iso(k.created_at),
            "last_used_at": _iso(k.last_used_at), "revoked_at": _iso(k.revoked_at)}


def list_keys(ledger: Ledger, user: str) -> dict[str, Any]:
    u = ledger.get_user(user)
    return {"user_id": u.id, "email": u.email, "keys": [_key(k) for k in ledger.list_keys(u.id)]}


def create_key(ledger: Ledger, user: str) -> dict[str, Any]:
    key = ledger.create_key(user)
    return {"user_id": key.user_id, "key_id": key.key_id, "api_key": key.api_key,
            "key_prefix": key.prefix}


def revoke_key(ledger: Ledger, key: str) -> dict[str, Any]:
    """`key`: the key id or the full key."""
    k = ledger.revoke_key(key)
    return {"key_id": k.id, "user_id": k.user_id, "key_prefix": k.prefix,
            "revoked_at": _iso(k.revoked_at)}


def usage(ledger: Ledger, user: str, *, since: Any = None) -> dict[str, Any]:
    since_dt = to_utc_naive(since)
    u = ledger.get_user(user)
    days = ledger.usage_daily(user, since=since_dt)
    totals = {k: sum(d[k] for d in days)
              for k in ("requests", "credits_used", "records_returned", "errors")}
    return {"user_id": u.id, "email": u.email, "since": _iso(since_dt), "totals": totals,
            "days": days}
