"""refunds: the store whose till gave the refund (a return taken at another store than the
sale's, 跨店退貨), filled for the refunds before it with their sale's store; and refunds found
by the day they were given

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-07 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0038"
down_revision: str | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("order_refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("store_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_order_refunds_store_id_stores"), "stores", ["store_id"], ["id"]
        )
        batch_op.create_index("ix_order_refunds_created", ["created_at"], unique=False)
    op.execute(
        "UPDATE order_refunds SET store_id = "
        "(SELECT orders.store_id FROM orders WHERE orders.id = order_refunds.order_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("order_refunds", schema=None) as batch_op:
        batch_op.drop_index("ix_order_refunds_created")
        batch_op.drop_constraint(batch_op.f("fk_order_refunds_store_id_stores"), type_="foreignkey")
        batch_op.drop_column("store_id")
