"""Ledger on SQLite (no services): credit formula, keys, grants and expiry order, debits,
idempotency records, usage analytics, append-only history."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from creditlake.ledger import (
    ApiKeyRevoked,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidApiKey,
    InvalidInput,
    KeyNotFound,
    Ledger,
    UsageRecord,
    UserExists,
    UserNotFound,
    credit_cost,
    utcnow,
)
from creditlake.ledger.models import CreditGrant, CreditTransaction


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield led
    led.close()


def usage(user_id: str, n: int = 0) -> UsageRecord:
    return UsageRecord("POST", "/api/v1/query", 200, 1.0, user_id=user_id, records_returned=n)


@pytest.mark.parametrize(("returned", "cost"), [
    (0, 1), (1, 1), (99, 1), (100, 2), (101, 2), (199, 2), (200, 3), (999, 10), (1000, 11),
    (1001, 11), (9999, 100), (10000, 101),
])
def test_credit_cost_boundaries(returned, cost):
    assert credit_cost(returned) == cost


def test_credit_cost_rejects_negative():
    with pytest.raises(ValueError):
        credit_cost(-1)


def test_migrations_are_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    Ledger(url).close()
    led = Ledger(url)  # second upgrade is a no-op
    names = set(sa.inspect(led.engine).get_table_names())
    assert {"users", "api_keys", "credit_grants", "credit_transactions", "api_usage_logs",
            "idempotency_keys", "alembic_version"} <= names
    led.close()


def test_user_and_keys(ledger):
    user, key = ledger.create_user("Alice@Example.com", 50)
    assert user.email == "alice@example.com" and user.balance == 50
    assert key.api_key.startswith("sk_live_") and key.prefix == key.api_key[:12]
    with ledger.engine.connect() as conn:  # stored hashed only
        stored = conn.execute(sa.text("select key_hash, prefix from api_keys")).one()
    assert key.api_key not in stored.key_hash and stored.prefix == key.prefix
    assert ledger.authenticate(key.api_key).user_id == user.id
    assert ledger.get_user("ALICE@example.com").id == user.id == ledger.get_user(user.id).id
    with pytest.raises(UserExists):
        ledger.create_user("alice@example.com")
    with pytest.raises(InvalidApiKey):
        ledger.authenticate("sk_live_nope")
    with pytest.raises(InvalidApiKey):
        ledger.authenticate(None)
    second = ledger.create_key(user.email)
    ledger.revoke_key(key.key_id)
    with pytest.raises(ApiKeyRevoked):
        ledger.authenticate(key.api_key)
    assert ledger.authenticate(second.api_key).id == second.key_id
    assert [k.revoked_at is not None for k in ledger.list_keys(user.id)] == [True, False]
    with pytest.raises(KeyNotFound):
        ledger.revoke_key("missing")
    with pytest.raises(UserNotFound):
        ledger.get_user("nobody@example.com")


@pytest.mark.parametrize("email", ["", "no-at", "a@b", "a b@c.de"])
def test_invalid_email(ledger, email):
    with pytest.raises(InvalidInput):
        ledger.create_user(email)


def test_add_credits_validation(ledger):
    user, _ = ledger.create_user("b@example.com")
    for bad in (0, -5, 10**13):
        with pytest.raises(InvalidInput):
            ledger.add_credits(user.id, bad)
    with pytest.raises(InvalidInput):
        ledger.add_credits(user.id, 5, expires_at=utcnow() - timedelta(days=1))
    with pytest.raises(InvalidInput):
        ledger.add_credits(user.id, 5, expires_at="not a date")


def test_debit_consumes_earliest_expiring_grant_first(ledger):
    user, _ = ledger.create_user("c@example.com", 10)  # never expires
    now = utcnow()
    late = ledger.add_credits(user.id, 5, expires_at=now + timedelta(days=30), reason="late")
    early = ledger.add_credits(user.id, 3, expires_at=now + timedelta(days=1), reason="early")
    assert ledger.balance(user.id) == 18
    ledger.charge(user.id, 4, usage(user.id))  # 3 from early, 1 from late
    left = {g.id: g.remaining for g in ledger.grants(user.id, include_spent=True)}
    assert left[early.id] == 0 and left[late.id] == 4
    ledger.charge(user.id, 6, usage(user.id))  # 4 from late, 2 from the never-expiring grant
    left = {g.reason: g.remaining for g in ledger.grants(user.id, include_spent=True)}
    assert left == {"early": 0, "late": 0, "signup": 8}
    with ledger.engine.connect() as conn:
        debits = conn.execute(sa.select(CreditTransaction.grant_id, CreditTransaction.amount)
                              .where(CreditTransaction.kind == "debit")
                              .order_by(CreditTransaction.id)).all()
    assert [(g, a) for g, a in debits] == [(early.id, 3), (late.id, 1), (late.id, 4),
                                           (ledger.grants(user.id)[0].id, 2)]


def test_expired_credit_stops_counting_without_rewriting_history(ledger):
    user, _ = ledger.create_user("d@example.com", 2)
    grant = ledger.add_credits(user.id, 50, expires_at=utcnow() + timedelta(days=1))
    with ledger.engine.connect() as conn:
        before = conn.execute(sa.select(CreditTransaction)).all()
    # Time passes: the grant's expiry moves into the past (as a clock would).
    with ledger.engine.begin() as conn:
        conn.execute(sa.update(CreditGrant).where(CreditGrant.id == grant.id)
                     .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert ledger.balance(user.id) == 2
    assert [g.expired for g in ledger.grants(user.id)] == [True, False]
    with pytest.raises(InsufficientCredits) as err:
        ledger.charge(user.id, 3, usage(user.id))
    assert str(err.value) == "Insufficient credits. Required: 3, Available: 2"
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.select(CreditTransaction)).all() == before


def test_insufficient_credits_changes_nothing(ledger):
    user, _ = ledger.create_user("e@example.com", 5)
    with pytest.raises(InsufficientCredits) as err:
        ledger.charge(user.id, 10, usage(user.id, 900))
    assert (err.value.required, err.value.available) == (10, 5)
    totals = ledger.ledger_totals(user.id)
    assert totals == {"credited": 5, "debited": 0, "usage_credits": 0, "balance": 5}
    assert ledger.usage(user.id)[1]["requests"] == 0


def test_charge_writes_usage_row_and_balances_reconcile(ledger):
    user, _ = ledger.create_user("f@example.com", 100)
    for n in (0, 150, 1000):
        r = ledger.charge(user.id, credit_cost(n), usage(user.id, n),
                          render=lambda rem: str(rem).encode())
        assert r.body == str(r.credits_remaining).encode()
    assert ledger.balance(user.id) == 100 - 1 - 2 - 11
    t = ledger.ledger_totals(user.id)
    assert t["debited"] == t["usage_credits"] == 14 and t["credited"] == 100
    items, totals = ledger.usage(user.id)
    assert [i["credits_used"] for i in items] == [11, 2, 1]
    assert totals == {"requests": 3, "credits_used": 14, "records_returned": 1150, "errors": 0}


def test_idempotency_record_replays_and_conflicts(ledger):
    user, _ = ledger.create_user("g@example.com", 10)
    first = ledger.charge(user.id, 2, usage(user.id), render=lambda rem: b"A%d" % rem,
                          idempotency=("k1", "fp"))
    assert first.body == b"A8" and not first.replayed
    assert ledger.find_idempotent(user.id, "k1", "fp").body == b"A8"
    # A racing duplicate that got past the lookup is rolled back whole and replays.
    again = ledger.charge(user.id, 2, usage(user.id), render=lambda rem: b"B%d" % rem,
                          idempotency=("k1", "fp"))
    assert again.replayed and again.body == b"A8"
    assert ledger.balance(user.id) == 8
    with pytest.raises(IdempotencyConflict):
        ledger.find_idempotent(user.id, "k1", "other")
    assert ledger.find_idempotent(user.id, "k2", "fp") is None


def test_usage_daily_analytics(ledger):
    user, _ = ledger.create_user("h@example.com", 100)
    for ms, status in ((10.0, 200), (20.0, 200), (30.0, 400), (40.0, 402)):
        ledger.log_usage(UsageRecord("POST", "/api/v1/query", status, ms, user_id=user.id))
    ledger.charge(user.id, 2, usage(user.id, 120))
    (day,) = ledger.usage_daily(user.email)
    assert day["requests"] == 5 and day["errors"] == 2 and day["credits_used"] == 2
    assert day["records_returned"] == 120
    assert 1.0 <= day["p50_ms"] <= 40.0 and day["p95_ms"] >= day["p50_ms"]


def test_sqlite_threads_never_overspend(ledger):
    from concurrent.futures import ThreadPoolExecutor

    user, _ = ledger.create_user("t@example.com", 50)

    def attempt(_: int) -> bool:
        try:
            ledger.charge(user.id, 3, usage(user.id))
            return True
        except InsufficientCredits:
            return False

    with ThreadPoolExecutor(max_workers=50) as pool:
        ok = sum(pool.map(attempt, range(50)))
    assert ok == 16
    t = ledger.ledger_totals(user.id)
    assert t["balance"] == 2 and t["debited"] == t["usage_credits"] == 48


def test_idempotency_key_expires_after_24_hours(ledger):
    from creditlake.ledger.models import IdempotencyRecord

    user, _ = ledger.create_user("i@example.com", 10)
    ledger.charge(user.id, 1, usage(user.id), render=lambda rem: b"old", idempotency=("k", "f"))
    with ledger.engine.begin() as conn:  # the first answer is now 25 hours old
        conn.execute(sa.update(IdempotencyRecord).values(
            created_at=utcnow() - timedelta(hours=25)))
    assert ledger.find_idempotent(user.id, "k", "f") is None
    fresh = ledger.charge(user.id, 1, usage(user.id), render=lambda rem: b"new",
                          idempotency=("k", "f"))
    assert not fresh.replayed and ledger.find_idempotent(user.id, "k", "f").body == b"new"
    assert ledger.balance(user.id) == 8


def test_migrations_match_the_models(ledger):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from creditlake.ledger.models import Base

    with ledger.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
