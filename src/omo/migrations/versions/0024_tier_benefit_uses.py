"""tier_benefit_uses: each order that used its member's monthly free shipping

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05 20:10:00

A level's `monthly_free_shipping` was configured but never applied at checkout. A sale now
waives what shipping is left after coupons while the member has shipments left this month,
and records the use here; a whole refund gives it back.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.shared.sqltypes

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tier_benefit_uses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("benefit", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("amount", omo.shared.sqltypes.Money(), nullable=False),
        sa.Column("created_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.Column("given_back_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_tier_benefit_uses_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tier_benefit_uses")),
        sa.UniqueConstraint(
            "order_id", "benefit", name=op.f("uq_tier_benefit_uses_order_id_benefit")
        ),
    )


def downgrade() -> None:
    op.drop_table("tier_benefit_uses")
