"""The debit on both ledger backends: PostgreSQL writes it in one statement, SQLite in one
statement per row; both must leave exactly the same rows (spending order, debit rows linked to
their usage row), refuse a revoked key and a short balance without writing anything."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from api_support import pg_schema_url, sqlite_url

from creditlake.ledger import (
    ApiKeyRevoked,
    InsufficientCredits,
    Ledger,
    UsageRecord,
    UserNotFound,
    utcnow,
)
from creditlake.ledger.models import ApiUsageLog, CreditTransaction


@pytest.fixture(params=["sqlite", "postgresql"])
def any_ledger(request, tmp_path):
    if request.param == "sqlite":
        led = Ledger(sqlite_url(tmp_path))
        yield led
        led.close()
        return
    with pg_schema_url(request.getfixturevalue("postgres_url")) as url:
        led = Ledger(url)
        yield led
        led.close()


def usage(user_id: str, key_id: str | None = None, n: int = 0) -> UsageRecord:
    return UsageRecord("POST", "/api/v1/query", 200, 1.0, user_id=user_id, api_key_id=key_id,
                       records_returned=n)


def rows(ledger: Ledger) -> tuple[list[tuple], list[tuple]]:
    with ledger.engine.connect() as conn:
        debits = conn.execute(sa.select(CreditTransaction.grant_id, CreditTransaction.amount,
                                        CreditTransaction.usage_log_id)
                              .where(CreditTransaction.kind == "debit")
                              .order_by(CreditTransaction.id)).all()
        logs = conn.execute(sa.select(ApiUsageLog.id, ApiUsageLog.credits_used)
                            .order_by(ApiUsageLog.id)).all()
    return [tuple(d) for d in debits], [tuple(u) for u in logs]


def test_debit_spends_earliest_expiry_first_and_links_the_usage_row(any_ledger):
    led = any_ledger
    user, key = led.create_user("o@example.com", 10)  # never expires
    now = utcnow()
    late = led.add_credits(user.id, 5, expires_at=now + timedelta(days=30))
    early = led.add_credits(user.id, 3, expires_at=now + timedelta(days=1))
    led.charge(user.id, 4, usage(user.id, key.key_id))  # 3 from early, 1 from late
    led.charge(user.id, 6, usage(user.id, key.key_id))  # 4 from late, 2 from the signup grant
    signup = next(g.id for g in led.grants(user.id) if g.expires_at is None)
    debits, logs = rows(led)
    (log1, used1), (log2, used2) = logs
    assert (used1, used2) == (4, 6)
    assert debits == [(early.id, 3, log1), (late.id, 1, log1), (late.id, 4, log2),
                      (signup, 2, log2)]
    assert led.balance(user.id) == 8
    t = led.ledger_totals(user.id)
    assert t["debited"] == t["usage_credits"] == 10


def test_a_revoked_key_is_refused_at_the_debit_and_nothing_is_written(any_ledger):
    """Whatever a caller cached about the key, the debit re-checks it in its transaction."""
    led = any_ledger
    user, key = led.create_user("r@example.com", 10)
    led.revoke_key(key.key_id)
    for cost in (2, 50):  # payable, and more than the balance: revoked wins over 402
        with pytest.raises(ApiKeyRevoked) as info:
            led.charge(user.id, cost, usage(user.id, key.key_id))
        assert info.value.user_id == user.id
    assert rows(led) == ([], []) and led.balance(user.id) == 10


def test_short_balance_and_unknown_user_write_nothing(any_ledger):
    led = any_ledger
    user, key = led.create_user("s@example.com", 3)
    with pytest.raises(InsufficientCredits):
        led.charge(user.id, 4, usage(user.id, key.key_id))
    with pytest.raises(UserNotFound):
        led.charge("no-such-user", 1, usage("no-such-user"))
    assert rows(led) == ([], []) and led.balance(user.id) == 3


def test_idempotent_and_plain_debits_share_the_balance(any_ledger):
    """With an Idempotency-Key the debit takes the locked two-statement path (its body is
    stored); without, PostgreSQL's one-statement path: both see each other's spending."""
    led = any_ledger
    user, key = led.create_user("i@example.com", 10)
    first = led.charge(user.id, 3, usage(user.id, key.key_id), render=lambda r: b"A%d" % r,
                       idempotency=("k1", "f"))
    plain = led.charge(user.id, 2, usage(user.id, key.key_id), render=lambda r: b"B%d" % r)
    again = led.charge(user.id, 3, usage(user.id, key.key_id), render=lambda r: b"C%d" % r,
                       idempotency=("k1", "f"))
    assert (first.body, plain.body, again.body) == (b"A7", b"B5", b"A7") and again.replayed
    assert led.balance(user.id) == 5
    t = led.ledger_totals(user.id)
    assert t["debited"] == t["usage_credits"] == 5
