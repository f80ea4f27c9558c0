"""SQLAlchemy 2 models of the credit ledger.

credit_transactions is append-only history (never updated or deleted). credit_grants holds the
one mutable number per grant (`remaining`), changed only in the same DB transaction as the
transaction row that explains it and only under `remaining >= amount` (CHECK remaining >= 0).
Timestamps are naive UTC so SQLite and PostgreSQL compare them the same way.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrement needs INTEGER


class Base(DeclarativeBase):
    pass


class TxKind(enum.StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"


class Reason(enum.StrEnum):
    SIGNUP = "signup"
    GRANT = "grant"
    QUERY = "query"


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime())
    # Bumped by every debit: the UPDATE takes the row lock (PostgreSQL) / write lock (SQLite)
    # that serializes concurrent debits of one user before balances are read.
    ledger_version: Mapped[int] = mapped_column(sa.BigInteger(), default=0)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id"), index=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(), nullable=True)


class CreditGrant(Base):
    __tablename__ = "credit_grants"
    __table_args__ = (sa.CheckConstraint("remaining >= 0", name="ck_grant_remaining"),)
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id"), index=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger())
    remaining: Mapped[int] = mapped_column(sa.BigInteger())
    expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime(), nullable=True)
    reason: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime())


class CreditTransaction(Base):
    __tablename__ = "credit_transactions"
    __table_args__ = (sa.CheckConstraint("amount > 0", name="ck_tx_amount_positive"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(10))  # TxKind
    amount: Mapped[int] = mapped_column(sa.BigInteger())  # always positive
    grant_id: Mapped[str] = mapped_column(sa.ForeignKey("credit_grants.id"))
    reason: Mapped[str] = mapped_column(sa.String(200))
    expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime(), nullable=True)
    usage_log_id: Mapped[int | None] = mapped_column(sa.BigInteger(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime())


class ApiUsageLog(Base):
    __tablename__ = "api_usage_logs"
    __table_args__ = (sa.Index("ix_usage_user_created", "user_id", "created_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    api_key_id: Mapped[str | None] = mapped_column(sa.String(36), nullable=True)
    method: Mapped[str] = mapped_column(sa.String(10))
    endpoint: Mapped[str] = mapped_column(sa.String(200))
    query_params: Mapped[str] = mapped_column(sa.Text())  # JSON
    status_code: Mapped[int] = mapped_column(sa.Integer())
    error_code: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    request_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, index=True)
    credits_used: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    records_returned: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    response_time_ms: Mapped[float] = mapped_column(sa.Float())
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(), index=True)


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("user_id", "key", name="uq_idempotency_user_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(sa.String(255))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int] = mapped_column(sa.Integer())
    response_body: Mapped[bytes] = mapped_column(sa.LargeBinary())
    # the original answer's X-Credits-* headers, returned again on a replay
    credits_used: Mapped[int | None] = mapped_column(sa.BigInteger(), nullable=True)
    credits_remaining: Mapped[int | None] = mapped_column(sa.BigInteger(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime())
