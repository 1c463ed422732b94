"""the orders a store day's closing counted: a sale the closing did not count is listed as late
whatever its recorded time (a till's transaction begun before the closing, committed after it)

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-07 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0041"
down_revision: str | None = "0040"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("store_day_closings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("counted", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("store_day_closings", schema=None) as batch_op:
        batch_op.drop_column("counted")
