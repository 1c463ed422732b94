"""referrals: what each side was given, and the qualifying order indexed (a refund of it takes
the bonuses back)

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_BACKFILL = {
    role: (
        f"UPDATE referrals SET {role}_points = COALESCE((SELECT p.points FROM points_entries p "  # noqa: S608 — two fixed names
        # ':' apart from the name, which would read as a bind parameter
        f"WHERE p.idempotency_key = 'referral:' || referrals.id || ':' || '{role}'), 0) "
        "WHERE status = 'rewarded'"
    )
    for role in ("referrer", "referee")
}


def upgrade() -> None:
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("referrer_points", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("referee_points", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_referrals_order_id"), ["order_id"], unique=False)
    # referrals rewarded before: what each side got, from their bonus entries
    for role in ("referrer", "referee"):
        op.execute(_BACKFILL[role])


def downgrade() -> None:
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referrals_order_id"))
        batch_op.drop_column("referee_points")
        batch_op.drop_column("referrer_points")
