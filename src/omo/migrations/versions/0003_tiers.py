"""tiers: programme versions, member levels and the history of changes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 07:24:19.110622
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.shared.sqltypes

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "tier_programmes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("programme", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("created_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tier_programmes")),
    )
    op.create_table(
        "member_tiers",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=32), nullable=False),
        sa.Column("since", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.Column("review_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_tiers_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_tiers")),
    )
    with op.batch_alter_table("member_tiers", schema=None) as batch_op:
        batch_op.create_index("ix_member_tiers_review", ["review_at"], unique=False)

    op.create_table(
        "tier_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("from_level", sa.String(length=32), nullable=True),
        sa.Column("to_level", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("standing", sa.JSON(), nullable=False),
        sa.Column("created_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_tier_changes_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tier_changes")),
    )
    with op.batch_alter_table("tier_changes", schema=None) as batch_op:
        batch_op.create_index("ix_tier_changes_member", ["member_id", "created_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("tier_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_tier_changes_member")

    op.drop_table("tier_changes")
    with op.batch_alter_table("member_tiers", schema=None) as batch_op:
        batch_op.drop_index("ix_member_tiers_review")

    op.drop_table("member_tiers")
    op.drop_table("tier_programmes")
