"""rewards: a catalogue of products, gifts, services and partner vouchers bought with points,
and each redemption

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.shared.sqltypes

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AT = omo.shared.sqltypes.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rewards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("partner", sa.String(length=80), nullable=True),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("per_member", sa.Integer(), nullable=True),
        sa.Column("min_level", sa.String(length=32), nullable=True),
        sa.Column("valid_from", _AT, nullable=True),
        sa.Column("valid_until", _AT, nullable=True),
        sa.Column("early_access_days", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rewards")),
        sa.UniqueConstraint("code", name=op.f("uq_rewards_code")),
    )
    op.create_table(
        "reward_redemptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reward_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=160), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("store", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("cancelled_at", _AT, nullable=True),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["points_entries.id"],
            name=op.f("fk_reward_redemptions_entry_id_points_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["reward_id"], ["rewards.id"], name=op.f("fk_reward_redemptions_reward_id_rewards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_redemptions")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_reward_redemptions_entry_id")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_reward_redemptions_idempotency_key")),
    )
    op.create_index(
        op.f("ix_reward_redemptions_reward_id"), "reward_redemptions", ["reward_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_reward_redemptions_reward_id"), table_name="reward_redemptions")
    op.drop_table("reward_redemptions")
    op.drop_table("rewards")
