"""Ledger operations: users, keys, grants, atomic debits, usage logs, idempotency records.

Plain functions over SQLAlchemy Core in short transactions, usable from the API (in a worker
thread), the CLI and tests alike. No framework imports.
"""

from __future__ import annotations

import functools
import json
import re
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from creditlake.ledger import db
from creditlake.ledger.errors import (
    ApiKeyRevoked,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidApiKey,
    InvalidInput,
    KeyNotFound,
    MissingApiKey,
    UserExists,
    UserNotFound,
)
from creditlake.ledger.keys import KEY_PREFIX, generate_key, hash_key, visible_prefix
from creditlake.ledger.models import (
    ApiKey,
    ApiUsageLog,
    CreditGrant,
    CreditTransaction,
    IdempotencyRecord,
    Reason,
    TxKind,
    User,
)

IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_GRANT = 10**12
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

users_t = User.__table__
keys_t = ApiKey.__table__
grants_t = CreditGrant.__table__
tx_t = CreditTransaction.__table__
usage_t = ApiUsageLog.__table__
idem_t = IdempotencyRecord.__table__


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def to_utc_naive(value: datetime | date | str | None) -> datetime | None:
    """Accept a datetime, a date (midnight UTC) or an ISO string; return naive UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(f"Not an ISO date/time: {value!r}") from exc
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    try:
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # year 1 at +14:00, year 9999 at -14:00
        raise InvalidInput(f"date/time out of range: {value.isoformat()}") from None
    return value


@dataclass(frozen=True)
class UserInfo:
    id: str
    email: str
    created_at: datetime
    balance: int


@dataclass(frozen=True)
class KeyInfo:
    id: str
    user_id: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None = None  # latest usage-log row of the key (listings only)


@dataclass(frozen=True)
class NewKey:
    key_id: str
    user_id: str
    api_key: str  # shown once
    prefix: str


@dataclass(frozen=True)
class GrantInfo:
    id: str
    amount: int
    remaining: int
    expires_at: datetime | None
    reason: str
    created_at: datetime
    expired: bool


@dataclass
class UsageRecord:
    method: str
    endpoint: str
    status_code: int
    response_time_ms: float
    user_id: str | None = None
    api_key_id: str | None = None
    query_params: Any = None
    error_code: str | None = None
    request_id: str | None = None  # the X-Request-Id of the response
    started: float | None = None  # perf_counter() at the request's start: stamps response_time_ms
    credits_used: int = 0
    records_returned: int = 0
    created_at: datetime = field(default_factory=utcnow)

    def row(self) -> dict[str, Any]:
        params = self.query_params
        if not isinstance(params, str):
            params = json.dumps(params, default=str, separators=(",", ":"))
        return {
            "user_id": self.user_id, "api_key_id": self.api_key_id, "method": self.method,
            "endpoint": self.endpoint[:200], "query_params": params,
            "status_code": self.status_code, "error_code": self.error_code,
            "request_id": self.request_id,
            "credits_used": self.credits_used, "records_returned": self.records_returned,
            "response_time_ms": round(self.response_time_ms, 3), "created_at": self.created_at,
        }


@dataclass(frozen=True)
class ChargeResult:
    body: bytes
    credits_used: int
    credits_remaining: int
    replayed: bool = False
    status_code: int = 200


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: bytes
    credits_used: int | None = None  # what the original answer cost and left (its headers)
    credits_remaining: int | None = None


class Ledger:
    """The credit ledger on one database (SQLite file or PostgreSQL)."""

    def __init__(self, url_or_engine: str | sa.Engine, *, migrate: bool = True) -> None:
        self.engine = (db.make_engine(url_or_engine) if isinstance(url_or_engine, str)
                       else url_or_engine)
        if migrate:
            db.migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    # ---- users --------------------------------------------------------------------------
    def create_user(self, email: str, credits: int = 0, *, expires_at: Any = None,
                    reason: str = Reason.SIGNUP, with_key: bool = True,
                    ) -> tuple[UserInfo, NewKey | None]:
        email = email.strip().lower()
        if not _EMAIL.match(email) or len(email) > 320:
            raise InvalidInput(f"Not a valid email address: {email!r}")
        if credits < 0 or credits > MAX_GRANT:
            raise InvalidInput("credits must be between 0 and 10^12")
        now = utcnow()
        exp = to_utc_naive(expires_at)
        if exp is not None and exp <= now:
            raise InvalidInput("expires_at must be in the future")
        user_id = str(uuid.uuid4())
        try:
            with self._tx() as conn:
                conn.execute(users_t.insert().values(id=user_id, email=email, created_at=now,
                                                     ledger_version=0))
                if credits:
                    self._grant(conn, user_id, credits, exp, reason, now)
                new_key = self._new_key(conn, user_id, now) if with_key else None
        except IntegrityError as exc:
            raise UserExists(email) from exc
        return UserInfo(user_id, email, now, credits), new_key

    def get_user(self, ref: str) -> UserInfo:
        """A user by id or e-mail, with the current balance."""
        with self.engine.connect() as conn:
            row = self._user_row(conn, ref)
            return UserInfo(row.id, row.email, row.created_at, self._available(conn, row.id))

    def list_users(self) -> list[UserInfo]:
        """Every user with the current balance, oldest first (one grouped query)."""
        now = utcnow()
        spendable = (sa.select(grants_t.c.user_id,
                               sa.func.sum(grants_t.c.remaining).label("balance"))
                     .where(_spendable(now)).group_by(grants_t.c.user_id).subquery())
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(users_t.c.id, users_t.c.email, users_t.c.created_at,
                          sa.func.coalesce(spendable.c.balance, 0))
                .select_from(users_t.outerjoin(spendable, spendable.c.user_id == users_t.c.id))
                .order_by(users_t.c.created_at, users_t.c.id)).all()
        return [UserInfo(r[0], r[1], r[2], int(r[3])) for r in rows]

    def _user_row(self, conn: sa.Connection, ref: str) -> sa.Row:
        ref = (ref or "").strip()
        col = users_t.c.email if "@" in ref else users_t.c.id
        row = conn.execute(sa.select(users_t).where(col == (ref.lower() if "@" in ref else ref))
                           ).first()
        if row is None:
            raise UserNotFound(ref)
        return row

    # ---- grants and balance -------------------------------------------------------------
    def add_credits(self, user_ref: str, amount: int, *, expires_at: Any = None,
                    reason: str | None = None) -> GrantInfo:
        if not isinstance(amount, int) or amount <= 0 or amount > MAX_GRANT:
            raise InvalidInput("amount must be a positive integer (at most 10^12)")
        exp = to_utc_naive(expires_at)
        now = utcnow()
        if exp is not None and exp <= now:
            raise InvalidInput("expires_at must be in the future")
        with self._tx() as conn:
            user = self._user_row(conn, user_ref)
            return self._grant(conn, user.id, amount, exp, reason or Reason.GRANT, now)

    def _grant(self, conn: sa.Connection, user_id: str, amount: int, expires_at: datetime | None,
               reason: str, now: datetime) -> GrantInfo:
        grant_id = str(uuid.uuid4())
        reason = str(reason)[:200]
        conn.execute(grants_t.insert().values(id=grant_id, user_id=user_id, amount=amount,
                                              remaining=amount, expires_at=expires_at,
                                              reason=reason, created_at=now))
        conn.execute(tx_t.insert().values(user_id=user_id, kind=TxKind.CREDIT.value,
                                          amount=amount, grant_id=grant_id, reason=reason,
                                          expires_at=expires_at, created_at=now))
        return GrantInfo(grant_id, amount, amount, expires_at, reason, now, False)

    def balance(self, user_ref: str) -> int:
        return self.get_user(user_ref).balance

    def grants(self, user_ref: str, *, include_spent: bool = False) -> list[GrantInfo]:
        now = utcnow()
        with self.engine.connect() as conn:
            user = self._user_row(conn, user_ref)
            q = sa.select(grants_t).where(grants_t.c.user_id == user.id)
            if not include_spent:
                q = q.where(grants_t.c.remaining > 0)
            rows = conn.execute(q.order_by(*_spend_order())).all()
        return [GrantInfo(r.id, r.amount, r.remaining, r.expires_at, r.reason, r.created_at,
                          r.expires_at is not None and r.expires_at <= now) for r in rows]

    def _available(self, conn: sa.Connection, user_id: str, now: datetime | None = None) -> int:
        now = now or utcnow()
        total = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(grants_t.c.remaining), 0))
            .where(grants_t.c.user_id == user_id, _spendable(now))
        ).scalar_one()
        return int(total)

    # ---- debits -------------------------------------------------------------------------
    def charge(self, user_id: str, cost: int, usage: UsageRecord,
               render: Callable[[int], bytes] | None = None,
               idempotency: tuple[str, str] | None = None) -> ChargeResult:
        """Debit `cost` credits and write the usage row in ONE transaction, or raise.

        The first statement locks what the debit spends: on PostgreSQL the user's spendable
        grants (SELECT … FOR UPDATE: concurrent debits of this user queue, and each then reads
        the committed values), on SQLite the database write lock (bumping users.ledger_version).
        Each grant update is also conditional (remaining >= take) and the CHECK constraint backs
        it, so a balance can never go negative. The key of the usage row must still be live when
        the debit commits (ApiKeyRevoked otherwise): a key revoked anywhere stops paid calls at
        once, whatever a caller cached. `render(credits_remaining)` builds the response body,
        stored for Idempotency-Key replays; a concurrent duplicate key makes the whole
        transaction roll back and replay.
        """
        if cost <= 0:
            raise ValueError("cost must be positive")
        if idempotency is None and self.engine.dialect.name == "postgresql":
            return self._charge_in_one_statement(user_id, cost, usage, render)
        try:
            with self._tx() as conn:
                now = utcnow()
                postgres = conn.dialect.name == "postgresql"
                grants = self._lock_spendable(conn, user_id, now, postgres)
                available = sum(g.remaining for g in grants)
                if available < cost:
                    if usage.api_key_id is not None:
                        _check_key_live(conn, usage.api_key_id)
                    if not grants:
                        self._user_row(conn, user_id)  # UserNotFound for an unknown user
                    raise InsufficientCredits(cost, available)
                remaining = available - cost
                body = render(remaining) if render else b""  # also stamps response_time_ms
                usage.credits_used = cost
                usage.created_at = now
                takes = _spend(grants, cost)
                write = _write_debit_pg if postgres else _write_debit
                write(conn, user_id, usage, takes, now)
                if idempotency is not None:
                    key, fingerprint = idempotency
                    conn.execute(idem_t.delete().where(
                        idem_t.c.user_id == user_id, idem_t.c.key == key,
                        idem_t.c.created_at < now - IDEMPOTENCY_TTL))
                    conn.execute(idem_t.insert().values(
                        user_id=user_id, key=key, fingerprint=fingerprint, status_code=200,
                        response_body=body, created_at=now, credits_used=cost,
                        credits_remaining=remaining))
        except IntegrityError:
            if idempotency is None:
                raise
            replay = self.find_idempotent(user_id, *idempotency)
            if replay is None:
                raise
            return ChargeResult(replay.body, replay.credits_used or 0,
                                replay.credits_remaining if replay.credits_remaining is not None
                                else -1, replayed=True, status_code=replay.status_code)
        return ChargeResult(body, cost, remaining)

    def _charge_in_one_statement(self, user_id: str, cost: int, usage: UsageRecord,
                                 render: Callable[[int], bytes] | None) -> ChargeResult:
        """PostgreSQL, no Idempotency-Key (no body to store): lock, spend and log in ONE
        autocommit statement, so the grants stay locked only while PostgreSQL runs it — not
        across round trips and Python — and the body is rendered once it has committed."""
        now = utcnow()
        usage.credits_used = cost
        usage.created_at = now
        if usage.started is not None:
            usage.response_time_ms = (time.perf_counter() - usage.started) * 1000
        params = {f"u_{k}": v for k, v in usage.row().items()} | {
            "user_id": user_id, "cost": cost, "now": now, "kind": TxKind.DEBIT.value,
            "reason": Reason.QUERY.value, "key_id": usage.api_key_id}
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            row = conn.execute(_ONE_STATEMENT_DEBIT, params).one()
            if not row.key_live:
                raise ApiKeyRevoked(usage.api_key_id, user_id)
            if row.available < cost:
                if row.available == 0:
                    self._user_row(conn, user_id)  # UserNotFound for an unknown user
                raise InsufficientCredits(cost, int(row.available))
        remaining = int(row.available) - cost
        return ChargeResult(render(remaining) if render else b"", cost, remaining)

    def _lock_spendable(self, conn: sa.Connection, user_id: str, now: datetime,
                        postgres: bool) -> list[sa.Row]:
        """The user's spendable grants in spending order, locked for this transaction."""
        q = (sa.select(grants_t.c.id, grants_t.c.remaining, grants_t.c.expires_at)
             .where(grants_t.c.user_id == user_id, _spendable(now)).order_by(*_spend_order()))
        if postgres:  # the spend-order columns never change, so locked rows stay in order
            return list(conn.execute(q.with_for_update()).all())
        bumped = conn.execute(users_t.update().where(users_t.c.id == user_id)
                              .values(ledger_version=users_t.c.ledger_version + 1))
        if bumped.rowcount != 1:
            raise UserNotFound(user_id)
        return list(conn.execute(q).all())

    def find_idempotent(self, user_id: str, key: str, fingerprint: str) -> Replay | None:
        """The stored response for (user, key) if younger than 24 h; conflict if reused."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(idem_t).where(
                idem_t.c.user_id == user_id, idem_t.c.key == key,
                idem_t.c.created_at >= utcnow() - IDEMPOTENCY_TTL)).first()
        if row is None:
            return None
        if row.fingerprint != fingerprint:
            raise IdempotencyConflict()
        return Replay(row.status_code, bytes(row.response_body), row.credits_used,
                      row.credits_remaining)

    # ---- keys ---------------------------------------------------------------------------
    def create_key(self, user_ref: str) -> NewKey:
        with self._tx() as conn:
            user = self._user_row(conn, user_ref)
            return self._new_key(conn, user.id, utcnow())

    def _new_key(self, conn: sa.Connection, user_id: str, now: datetime) -> NewKey:
        key = generate_key()
        key_id = str(uuid.uuid4())
        conn.execute(keys_t.insert().values(id=key_id, user_id=user_id,
                                            prefix=visible_prefix(key), key_hash=hash_key(key),
                                            created_at=now))
        return NewKey(key_id, user_id, key, visible_prefix(key))

    def revoke_key(self, ref: str) -> KeyInfo:
        """Revoke by key id or by the full key (sk_live_…, as a customer reports a leak)."""
        ref = (ref or "").strip()
        by_key = ref.startswith(KEY_PREFIX)
        cond = keys_t.c.key_hash == hash_key(ref) if by_key else keys_t.c.id == ref
        with self._tx() as conn:
            row = conn.execute(sa.select(keys_t).where(cond)).first()
            if row is None:
                raise KeyNotFound(visible_prefix(ref) + "…" if by_key else ref)
            revoked_at = row.revoked_at
            if revoked_at is None:
                revoked_at = utcnow()
                conn.execute(keys_t.update().where(keys_t.c.id == row.id)
                             .values(revoked_at=revoked_at))
        return KeyInfo(row.id, row.user_id, row.prefix, row.created_at, revoked_at)

    def list_keys(self, user_ref: str) -> list[KeyInfo]:
        with self.engine.connect() as conn:
            user = self._user_row(conn, user_ref)
            rows = conn.execute(sa.select(keys_t).where(keys_t.c.user_id == user.id)
                                .order_by(keys_t.c.created_at)).all()
            # last use from the usage log (every request is logged): no write per request
            used = dict(conn.execute(
                sa.select(usage_t.c.api_key_id, sa.func.max(usage_t.c.created_at))
                .where(usage_t.c.user_id == user.id, usage_t.c.api_key_id.is_not(None))
                .group_by(usage_t.c.api_key_id)).all())
        return [KeyInfo(r.id, r.user_id, r.prefix, r.created_at, r.revoked_at, used.get(r.id))
                for r in rows]

    def authenticate(self, api_key: str | None) -> KeyInfo:
        if not api_key:
            raise MissingApiKey()
        if not api_key or not api_key.startswith(KEY_PREFIX) or len(api_key) > 200:
            raise InvalidApiKey()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(keys_t).where(keys_t.c.key_hash == hash_key(api_key))
                               ).first()
        if row is None:
            raise InvalidApiKey()
        if row.revoked_at is not None:
            raise ApiKeyRevoked(row.id, row.user_id)
        return KeyInfo(row.id, row.user_id, row.prefix, row.created_at, row.revoked_at)

    # ---- usage --------------------------------------------------------------------------
    def log_usage(self, usage: UsageRecord) -> int:
        with self._tx() as conn:
            return int(conn.execute(usage_t.insert().values(**usage.row())).inserted_primary_key[0])

    def usage(self, user_ref: str, *, since: Any = None, until: Any = None, limit: int = 100,
              offset: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The user's usage rows (newest first) and totals over the same date range."""
        since, until = to_utc_naive(since), to_utc_naive(until)
        with self.engine.connect() as conn:
            user = self._user_row(conn, user_ref)
            cond = [usage_t.c.user_id == user.id]
            if since is not None:
                cond.append(usage_t.c.created_at >= since)
            if until is not None:
                cond.append(usage_t.c.created_at < until)
            rows = conn.execute(sa.select(usage_t).where(*cond)
                                .order_by(usage_t.c.created_at.desc(), usage_t.c.id.desc())
                                .limit(limit).offset(offset)).all()
            t = conn.execute(sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(usage_t.c.credits_used), 0),
                sa.func.coalesce(sa.func.sum(usage_t.c.records_returned), 0),
                sa.func.coalesce(sa.func.sum(sa.case((usage_t.c.status_code >= 400, 1),
                                                     else_=0)), 0),
            ).where(*cond)).one()
        items = [{
            "id": r.id, "created_at": r.created_at, "method": r.method, "endpoint": r.endpoint,
            "status_code": r.status_code, "error_code": r.error_code, "request_id": r.request_id,
            "credits_used": r.credits_used, "records_returned": r.records_returned,
            "response_time_ms": r.response_time_ms, "query_params": _json_or_text(r.query_params),
        } for r in rows]
        totals = {"requests": int(t[0]), "credits_used": int(t[1]),
                  "records_returned": int(t[2]), "errors": int(t[3])}
        return items, totals

    def usage_daily(self, user_ref: str, *, since: Any = None) -> list[dict[str, Any]]:
        """Per-day analytics: requests, credits, records, errors, p50/p95 latency."""
        since = to_utc_naive(since) or (utcnow() - timedelta(days=30))
        with self.engine.connect() as conn:
            user = self._user_row(conn, user_ref)
            rows = conn.execute(
                sa.select(usage_t.c.created_at, usage_t.c.credits_used,
                          usage_t.c.records_returned, usage_t.c.status_code,
                          usage_t.c.response_time_ms)
                .where(usage_t.c.user_id == user.id, usage_t.c.created_at >= since)
                .order_by(usage_t.c.created_at)).all()
        # Admin analytics over one user's bounded window: fine to aggregate here, and it keeps
        # the percentile maths identical on SQLite and PostgreSQL.
        days: dict[date, list[sa.Row]] = {}
        for r in rows:
            days.setdefault(r.created_at.date(), []).append(r)
        out = []
        for day, rs in days.items():
            lat = sorted(r.response_time_ms for r in rs)
            out.append({
                "day": day.isoformat(), "requests": len(rs),
                "credits_used": sum(r.credits_used for r in rs),
                "records_returned": sum(r.records_returned for r in rs),
                "errors": sum(1 for r in rs if r.status_code >= 400),
                "p50_ms": round(_percentile(lat, 50), 3), "p95_ms": round(_percentile(lat, 95), 3),
            })
        return out

    def ledger_totals(self, user_ref: str) -> dict[str, int]:
        """sum(credits), sum(debits) and sum(usage credits_used): the reconciliation numbers."""
        with self.engine.connect() as conn:
            user = self._user_row(conn, user_ref)

            def total(kind: str) -> int:
                return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(tx_t.c.amount), 0))
                                        .where(tx_t.c.user_id == user.id, tx_t.c.kind == kind)
                                        ).scalar_one())

            used = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(usage_t.c.credits_used), 0))
                                .where(usage_t.c.user_id == user.id)).scalar_one()
            return {"credited": total(TxKind.CREDIT.value), "debited": total(TxKind.DEBIT.value),
                    "usage_credits": int(used), "balance": self._available(conn, user.id)}


def _spend(grants: list[sa.Row], cost: int) -> list[tuple[sa.Row, int]]:
    """(grant, credits taken) in spending order: earliest expiry first, never-expiring last."""
    takes, left = [], cost
    for g in grants:
        if left == 0:
            break
        take = min(left, g.remaining)
        takes.append((g, take))
        left -= take
    return takes


def _check_key_live(conn: sa.Connection, key_id: str) -> None:
    revoked = conn.execute(sa.select(keys_t.c.revoked_at, keys_t.c.user_id)
                           .where(keys_t.c.id == key_id)).first()
    if revoked is not None and revoked.revoked_at is not None:
        raise ApiKeyRevoked(key_id, revoked.user_id)


def _debit_row(user_id: str, grant: sa.Row, take: int, now: datetime) -> dict[str, Any]:
    return {"user_id": user_id, "kind": TxKind.DEBIT.value, "amount": take, "grant_id": grant.id,
            "reason": Reason.QUERY.value, "expires_at": grant.expires_at, "created_at": now}


def _write_debit(conn: sa.Connection, user_id: str, usage: UsageRecord,
                 takes: list[tuple[sa.Row, int]], now: datetime) -> None:
    """Usage row, grant updates and debit rows, one statement each (SQLite: a local file)."""
    if usage.api_key_id is not None:
        _check_key_live(conn, usage.api_key_id)
    log_id = conn.execute(usage_t.insert().values(**usage.row())).inserted_primary_key[0]
    for g, take in takes:
        done = conn.execute(grants_t.update()
                            .where(grants_t.c.id == g.id, grants_t.c.remaining >= take)
                            .values(remaining=grants_t.c.remaining - take))
        if done.rowcount != 1:  # cannot happen under the ledger lock; be loud
            raise RuntimeError(f"grant {g.id} changed under the ledger lock")
        conn.execute(tx_t.insert().values(**_debit_row(user_id, g, take, now),
                                          usage_log_id=log_id))


def _write_debit_pg(conn: sa.Connection, user_id: str, usage: UsageRecord,
                    takes: list[tuple[sa.Row, int]], now: datetime) -> None:
    """The same writes as _write_debit in ONE statement (data-modifying CTEs): one round trip
    while the grants are locked instead of 2 + 2 per grant. Text SQL, one per grant count:
    the same statement every time, so PostgreSQL prepares it once per connection."""
    params: dict[str, Any] = {f"u_{k}": v for k, v in usage.row().items()}
    for i, (g, take) in enumerate(takes):
        params |= {f"g{i}": g.id, f"t{i}": take, f"e{i}": g.expires_at}
    params |= {"user_id": user_id, "kind": TxKind.DEBIT.value, "reason": Reason.QUERY.value,
               "now": now, "key_id": usage.api_key_id}
    row = conn.execute(_debit_sql(len(takes)), params).one()
    if not row.key_live:
        _check_key_live(conn, str(usage.api_key_id))  # raises; the transaction rolls back
    if row.updated != len(takes) or row.debits != len(takes):  # cannot happen under the lock
        raise RuntimeError("a grant changed under the ledger lock")


@functools.cache
def _debit_sql(grants: int) -> sa.TextClause:
    spent = ", ".join(f"(:g{i}, CAST(:t{i} AS BIGINT), CAST(:e{i} AS TIMESTAMP), {i})"
                      for i in range(grants))
    cols = _USAGE_COLUMNS
    return sa.text(f"""
WITH spent (grant_id, take, expires_at, n) AS (VALUES {spent}),
log AS (INSERT INTO {usage_t.name} ({", ".join(cols)})
        VALUES ({", ".join(f":u_{c}" for c in cols)}) RETURNING id),
updated AS (UPDATE {grants_t.name} AS g SET remaining = g.remaining - s.take FROM spent AS s
            WHERE g.id = s.grant_id AND g.remaining >= s.take RETURNING g.id),
debits AS (INSERT INTO {tx_t.name} (user_id, kind, amount, grant_id, reason, expires_at,
                                    usage_log_id, created_at)
           SELECT :user_id, :kind, s.take, s.grant_id, :reason, s.expires_at, log.id, :now
           FROM spent AS s CROSS JOIN log ORDER BY s.n RETURNING id)
SELECT (SELECT count(*) FROM updated) AS updated, (SELECT count(*) FROM debits) AS debits,
       (CAST(:key_id AS VARCHAR) IS NULL OR EXISTS (SELECT 1 FROM {keys_t.name}
        WHERE id = :key_id AND revoked_at IS NULL)) AS key_live""")


_USAGE_COLUMNS = list(UsageRecord("", "", 0, 0.0).row())
# The debit of Ledger._charge_in_one_statement. Spending order as _spend_order(); take per grant
# as _spend() (a running sum); every write only when the balance covers the cost and the key is
# live; a grant that changed under the lock fails the whole statement (nothing commits). The
# tests run the same debits on SQLite (Python allocation) and here.
_SPEND_ORDER_SQL = "expires_at IS NULL, expires_at, created_at, id"
_ONE_STATEMENT_DEBIT = sa.text(f"""
WITH locked AS MATERIALIZED (
    SELECT id, remaining, expires_at, created_at FROM {grants_t.name}
    WHERE user_id = :user_id AND remaining > 0 AND (expires_at IS NULL OR expires_at > :now)
    ORDER BY {_SPEND_ORDER_SQL} FOR UPDATE),
ordered AS (
    SELECT id, remaining, expires_at,
           sum(remaining) OVER (ORDER BY {_SPEND_ORDER_SQL}) AS upto,
           row_number() OVER (ORDER BY {_SPEND_ORDER_SQL}) AS n
    FROM locked),
state AS (
    SELECT coalesce(sum(remaining), 0) AS available,
           (CAST(:key_id AS VARCHAR) IS NULL OR EXISTS (
               SELECT 1 FROM {keys_t.name} WHERE id = :key_id AND revoked_at IS NULL)) AS key_live
    FROM locked),
go AS (SELECT available >= :cost AND key_live AS ok FROM state),
spent AS (
    SELECT id AS grant_id, expires_at, n, LEAST(remaining, :cost - (upto - remaining)) AS take
    FROM ordered WHERE upto - remaining < :cost AND (SELECT ok FROM go)),
log AS (
    INSERT INTO {usage_t.name} ({", ".join(_USAGE_COLUMNS)})
    SELECT {", ".join(f":u_{c}" for c in _USAGE_COLUMNS)} WHERE (SELECT ok FROM go)
    RETURNING id),
updated AS (
    UPDATE {grants_t.name} AS g SET remaining = g.remaining - s.take FROM spent AS s
    WHERE g.id = s.grant_id AND g.remaining >= s.take RETURNING g.id),
debits AS (
    INSERT INTO {tx_t.name} (user_id, kind, amount, grant_id, reason, expires_at, usage_log_id,
                             created_at)
    SELECT :user_id, :kind, s.take, s.grant_id, :reason, s.expires_at, log.id, :now
    FROM spent AS s CROSS JOIN log ORDER BY s.n RETURNING id)
SELECT st.available, st.key_live,
       CASE WHEN (SELECT count(*) FROM updated) = (SELECT count(*) FROM spent)
             AND (SELECT count(*) FROM debits) = (SELECT count(*) FROM spent) THEN true
            -- not a constant (PostgreSQL would fold one at plan time): fails only here
            ELSE CAST('a grant changed under the ledger lock ' || st.available AS boolean)
       END AS consistent
FROM state AS st""")


def _spendable(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(grants_t.c.remaining > 0,
                   sa.or_(grants_t.c.expires_at.is_(None), grants_t.c.expires_at > now))


def _spend_order() -> tuple:
    # Earliest expiry first; grants without expiry last; then oldest first.
    return (grants_t.c.expires_at.is_(None), grants_t.c.expires_at, grants_t.c.created_at,
            grants_t.c.id)


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1])


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value
