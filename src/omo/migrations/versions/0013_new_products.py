"""new-product penetration of the last analytics refresh

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "new_products",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("launched", sa.String(length=10), nullable=False),
        sa.Column("buyers", sa.Integer(), nullable=False),
        sa.Column("repeat_buyers", sa.Integer(), nullable=False),
        sa.Column("window_buyers", sa.Integer(), nullable=False),
        sa.Column("penetration", sa.Float(), nullable=False),
        sa.Column("repeat_rate", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["analytics_runs.id"], name=op.f("fk_new_products_run_id_analytics_runs")
        ),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_new_products")),
    )


def downgrade() -> None:
    op.drop_table("new_products")
