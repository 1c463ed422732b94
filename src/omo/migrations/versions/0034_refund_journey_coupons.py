"""refund journey coupons: how many coupons journeys gave for the order (滿額贈券) or for the
level it earned (升等禮) a refund voided, and what those already used took off that it kept
back

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 00:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.shared.sqltypes

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # null on refunds made before: none was voided
    with op.batch_alter_table("order_refunds") as batch:
        batch.add_column(sa.Column("journey_coupons_withdrawn", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("journey_coupons_charged", omo.shared.sqltypes.Money(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("order_refunds") as batch:
        batch.drop_column("journey_coupons_charged")
        batch.drop_column("journey_coupons_withdrawn")
