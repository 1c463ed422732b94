"""webhooks switched off after failing too long: since when a subscription has been failing,
and when the scheduler switched it off

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-07 15:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.shared.sqltypes

revision: str = "0040"
down_revision: str | None = "0039"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failing_since", omo.shared.sqltypes.UtcDateTime(timezone=True))
        )
        batch_op.add_column(
            sa.Column("switched_off_at", omo.shared.sqltypes.UtcDateTime(timezone=True))
        )


def downgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("switched_off_at")
        batch_op.drop_column("failing_since")
