"""basket rules with two-item antecedents ({A, B} -> C): antecedent_2 joins the key

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 19:00:00

The rules are derived data (each `omo refresh` replaces them), so the table is rebuilt empty
with the new key rather than altered in place: the next refresh fills it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _create(with_second: bool) -> None:
    key = ["level", "antecedent", *(["antecedent_2"] if with_second else []), "consequent"]
    op.create_table(
        "basket_rules",
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("antecedent", sa.String(length=64), nullable=False),
        *(
            [sa.Column("antecedent_2", sa.String(length=64), server_default="", nullable=False)]
            if with_second
            else []
        ),
        sa.Column("consequent", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("support", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("lift", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["analytics_runs.id"], name=op.f("fk_basket_rules_run_id_analytics_runs")
        ),
        sa.PrimaryKeyConstraint(*key, name=op.f("pk_basket_rules")),
    )


def upgrade() -> None:
    op.drop_table("basket_rules")
    _create(with_second=True)


def downgrade() -> None:
    op.drop_table("basket_rules")
    _create(with_second=False)
