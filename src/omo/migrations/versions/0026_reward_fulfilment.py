"""rewards: a redemption is handed over, shipped or used at the partner (fulfilment); partner
rewards get a voucher code; stock moves by additions kept under an idempotency key

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.shared.sqltypes

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AT = omo.shared.sqltypes.UtcDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("reward_redemptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("voucher", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("fulfilled_at", _AT, nullable=True))
        batch_op.add_column(sa.Column("fulfilled_store", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("fulfilled_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("reference", sa.String(length=120), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_reward_redemptions_voucher"), ["voucher"])
    op.create_table(
        "reward_stock_moves",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reward_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=120), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("stock_after", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("created_at", _AT, nullable=False),
        sa.ForeignKeyConstraint(
            ["reward_id"], ["rewards.id"], name=op.f("fk_reward_stock_moves_reward_id_rewards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_stock_moves")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_reward_stock_moves_idempotency_key")),
    )
    op.create_index(
        op.f("ix_reward_stock_moves_reward_id"), "reward_stock_moves", ["reward_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_reward_stock_moves_reward_id"), table_name="reward_stock_moves")
    op.drop_table("reward_stock_moves")
    with op.batch_alter_table("reward_redemptions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_reward_redemptions_voucher"), type_="unique")
        batch_op.drop_column("reference")
        batch_op.drop_column("fulfilled_by")
        batch_op.drop_column("fulfilled_store")
        batch_op.drop_column("fulfilled_at")
        batch_op.drop_column("voucher")
