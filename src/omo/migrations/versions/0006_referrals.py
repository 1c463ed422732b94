"""referrals: codes per member and referrals with their outcome

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 07:46:36.220448
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.shared.sqltypes

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "referral_codes",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("created_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_referral_codes_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_referral_codes")),
        sa.UniqueConstraint("code", name=op.f("uq_referral_codes_code")),
    )
    op.create_table(
        "referrals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referrer_id", sa.Integer(), nullable=False),
        sa.Column("referee_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("created_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.Column("settled_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_referrals_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["referee_id"], ["members.id"], name=op.f("fk_referrals_referee_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["referrer_id"], ["members.id"], name=op.f("fk_referrals_referrer_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.UniqueConstraint("referee_id", name=op.f("uq_referrals_referee_id")),
    )
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referrals_referrer_id"), ["referrer_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referrals_referrer_id"))

    op.drop_table("referrals")
    op.drop_table("referral_codes")
