"""points: programme versions, ledger entries and lot allocations

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 07:14:21.744155
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.shared.sqltypes

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "points_programmes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("created_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_programmes")),
    )
    op.create_table(
        "points_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=160), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("reverses_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("created_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.Column("available_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=True),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_points_entries_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_points_entries_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["points_entries.id"],
            name=op.f("fk_points_entries_reverses_id_points_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_entries")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_points_entries_idempotency_key")),
    )
    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_points_entries_expiring", ["expires_at", "remaining"], unique=False
        )
        batch_op.create_index(
            "ix_points_entries_lots", ["member_id", "remaining", "expires_at"], unique=False
        )
        batch_op.create_index(
            "ix_points_entries_member_created", ["member_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_points_entries_order", ["order_id"], unique=False)

    op.create_table(
        "points_allocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("debit_id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["debit_id"],
            ["points_entries.id"],
            name=op.f("fk_points_allocations_debit_id_points_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"],
            ["points_entries.id"],
            name=op.f("fk_points_allocations_lot_id_points_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_allocations")),
    )
    with op.batch_alter_table("points_allocations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_points_allocations_debit_id"), ["debit_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_points_allocations_lot_id"), ["lot_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("points_allocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_points_allocations_lot_id"))
        batch_op.drop_index(batch_op.f("ix_points_allocations_debit_id"))

    op.drop_table("points_allocations")
    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_points_entries_order")
        batch_op.drop_index("ix_points_entries_member_created")
        batch_op.drop_index("ix_points_entries_lots")
        batch_op.drop_index("ix_points_entries_expiring")

    op.drop_table("points_entries")
    op.drop_table("points_programmes")
