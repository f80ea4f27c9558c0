"""request ids in the usage log; credits of an idempotent answer kept for its replay

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER most things in place (alembic copies the table there)
    with op.batch_alter_table("api_usage_logs") as batch:
        batch.add_column(sa.Column("request_id", sa.String(64), nullable=True))
        batch.create_index("ix_api_usage_logs_request_id", ["request_id"])
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("credits_used", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("credits_remaining", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("credits_remaining")
        batch.drop_column("credits_used")
    with op.batch_alter_table("api_usage_logs") as batch:
        batch.drop_index("ix_api_usage_logs_request_id")
        batch.drop_column("request_id")
