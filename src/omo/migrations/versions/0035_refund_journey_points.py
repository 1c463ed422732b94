"""refund journey points: the points journeys awarded for the order (滿額贈點) or for the level
it earned (升等禮) a refund took back, and those already spent it wrote off

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # null on refunds made before: none was taken back
    with op.batch_alter_table("order_refunds") as batch:
        batch.add_column(sa.Column("journey_points_taken_back", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("journey_points_short", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("order_refunds") as batch:
        batch.drop_column("journey_points_short")
        batch.drop_column("journey_points_taken_back")
