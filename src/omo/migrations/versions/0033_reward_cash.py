"""reward cash: what a reward costs in money beside its points (點數加價購), and what each
redemption collected

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-06 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.shared.sqltypes

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # null: points alone, as every reward and redemption before
    with op.batch_alter_table("rewards") as batch:
        batch.add_column(sa.Column("cash", omo.shared.sqltypes.Money(), nullable=True))
    with op.batch_alter_table("reward_redemptions") as batch:
        batch.add_column(sa.Column("cash", omo.shared.sqltypes.Money(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reward_redemptions") as batch:
        batch.drop_column("cash")
    with op.batch_alter_table("rewards") as batch:
        batch.drop_column("cash")
