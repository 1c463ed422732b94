"""refund claw-back: what a refund kept back for coupons whose threshold the kept goods miss,
for earned points the member had spent, and the tier gifts withdrawn with a level

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.shared.sqltypes

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # null on refunds made before: nothing was kept back then
    with op.batch_alter_table("order_refunds") as batch:
        batch.add_column(
            sa.Column("coupon_clawed_back", omo.shared.sqltypes.Money(), nullable=True)
        )
        batch.add_column(sa.Column("coupons_clawed_back", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("points_charged", omo.shared.sqltypes.Money(), nullable=True))
        batch.add_column(sa.Column("tier_gifts_withdrawn", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("order_refunds") as batch:
        batch.drop_column("tier_gifts_withdrawn")
        batch.drop_column("points_charged")
        batch.drop_column("coupons_clawed_back")
        batch.drop_column("coupon_clawed_back")
