"""members' recent behaviour on their scores: views, carts, ad clicks, the last NPS

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("member_scores", schema=None) as batch_op:
        for name in ("views_30d", "carts_30d", "ad_clicks_30d"):
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("nps_last", sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("member_scores", schema=None) as batch_op:
        for name in ("nps_last", "ad_clicks_30d", "carts_30d", "views_30d"):
            batch_op.drop_column(name)
