"""refund outcome: what a refund did, kept so that a retry of it is answered the same

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.shared.sqltypes

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("points_taken_back", sa.Integer()),
    ("points_given_back", sa.Integer()),
    ("points_short", sa.Integer()),
    ("points_short_value", omo.shared.sqltypes.Money()),
    ("coupons_restored", sa.Integer()),
    ("free_shipping_restored", sa.Boolean()),
    ("referral_revoked", sa.Boolean()),
    ("tier_lowered_to", sa.String(length=32)),
)


def upgrade() -> None:
    # null on refunds made before: their retries are answered with zeros, as they were
    with op.batch_alter_table("order_refunds") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("order_refunds") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
