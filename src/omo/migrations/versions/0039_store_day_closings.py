"""store days closed (日結確認): who closed a store's day, when, and its figures then

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-07 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.shared.sqltypes

revision: str = "0039"
down_revision: str | None = "0038"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "store_day_closings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("closed_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.String(length=80), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_store_day_closings_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_day_closings")),
        sa.UniqueConstraint("store_id", "day", name=op.f("uq_store_day_closings_store_id_day")),
    )


def downgrade() -> None:
    op.drop_table("store_day_closings")
