"""foundation: members, identifiers, commerce, events, merges, api keys

Revision ID: 0001
Revises:
Create Date: 2026-11-24 05:53:47.983653
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.shared.sqltypes

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("price", omo.shared.sqltypes.Money(), nullable=False),
        sa.Column("unit_cost", omo.shared.sqltypes.Money(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.CheckConstraint("price >= 0", name=op.f("ck_products_price_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("sku", name=op.f("uq_products_sku")),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_products_category"), ["category"], unique=False)

    op.create_table(
        "stores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("city", sa.String(length=64), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("opened_on", sa.Date(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stores")),
        sa.UniqueConstraint("code", name=op.f("uq_stores_code")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("scopes", sa.String(length=300), nullable=False),
        sa.Column("created_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_api_keys_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("gender", sa.String(length=16), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("postal_code", sa.String(length=16), nullable=True),
        sa.Column("city", sa.String(length=64), nullable=True),
        sa.Column("district", sa.String(length=64), nullable=True),
        sa.Column("address_line", sa.String(length=300), nullable=True),
        sa.Column("preferred_language", sa.String(length=16), nullable=True),
        sa.Column("joined_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.Column("join_channel", sa.String(length=16), nullable=True),
        sa.Column("join_store_id", sa.Integer(), nullable=True),
        sa.Column("created_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["join_store_id"], ["stores.id"], name=op.f("fk_members_join_store_id_stores")
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"], ["members.id"], name=op.f("fk_members_merged_into_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_members_merged_into_id"), ["merged_into_id"], unique=False
        )
        batch_op.create_index("ix_members_name_birth", ["name", "birth_date"], unique=False)
        batch_op.create_index("ix_members_status_joined", ["status", "joined_at"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("occurred_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("query", sa.String(length=200), nullable=True),
        sa.Column("utm_source", sa.String(length=64), nullable=True),
        sa.Column("utm_medium", sa.String(length=64), nullable=True),
        sa.Column("utm_campaign", sa.String(length=128), nullable=True),
        sa.Column("survey", sa.String(length=8), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=True),
        sa.Column("contact_kind", sa.String(length=24), nullable=True),
        sa.Column("contact_namespace", sa.String(length=24), nullable=True),
        sa.Column("contact_value", sa.String(length=254), nullable=True),
        sa.Column("created_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_events_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_events_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_events_event_id")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_contact",
            ["contact_kind", "contact_namespace", "contact_value"],
            unique=False,
        )
        batch_op.create_index("ix_events_kind_occurred", ["kind", "occurred_at"], unique=False)
        batch_op.create_index(
            "ix_events_member_occurred", ["member_id", "occurred_at"], unique=False
        )

    op.create_table(
        "identity_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survivor_id", sa.Integer(), nullable=False),
        sa.Column("absorbed_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("moved", sa.JSON(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("created_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.Column("undone_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=True),
        sa.Column("undone_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["absorbed_id"], ["members.id"], name=op.f("fk_identity_merges_absorbed_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["survivor_id"], ["members.id"], name=op.f("fk_identity_merges_survivor_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_merges")),
    )
    with op.batch_alter_table("identity_merges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_merges_absorbed_id"), ["absorbed_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_identity_merges_survivor_id"), ["survivor_id"], unique=False
        )

    op.create_table(
        "member_consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=True),
        sa.Column("updated_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_consents_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_consents")),
        sa.UniqueConstraint(
            "member_id", "channel", name=op.f("uq_member_consents_member_id_channel")
        ),
    )
    op.create_table(
        "member_identifiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("namespace", sa.String(length=24), nullable=False),
        sa.Column("value", sa.String(length=254), nullable=False),
        sa.Column("source_channel", sa.String(length=16), nullable=True),
        sa.Column("created_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_identifiers_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_identifiers")),
        sa.UniqueConstraint(
            "kind", "namespace", "value", name=op.f("uq_member_identifiers_kind_namespace_value")
        ),
    )
    with op.batch_alter_table("member_identifiers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_member_identifiers_member_id"), ["member_id"], unique=False
        )

    op.create_table(
        "member_stats",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("first_order_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_order_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=True),
        sa.Column("order_count", sa.Integer(), nullable=False),
        sa.Column("total_spend", omo.shared.sqltypes.Money(), nullable=False),
        sa.Column("online_spend", omo.shared.sqltypes.Money(), nullable=False),
        sa.Column("offline_spend", omo.shared.sqltypes.Money(), nullable=False),
        sa.Column("online_orders", sa.Integer(), nullable=False),
        sa.Column("offline_orders", sa.Integer(), nullable=False),
        sa.Column("last_channel", sa.String(length=16), nullable=True),
        sa.Column("last_store_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["last_store_id"], ["stores.id"], name=op.f("fk_member_stats_last_store_id_stores")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_stats_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_stats")),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("fulfilment", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ordered_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal", omo.shared.sqltypes.Money(), nullable=False),
        sa.Column("discount_total", omo.shared.sqltypes.Money(), nullable=False),
        sa.Column("shipping_fee", omo.shared.sqltypes.Money(), nullable=False),
        sa.Column("total", omo.shared.sqltypes.Money(), nullable=False),
        sa.Column("created_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("total >= 0", name=op.f("ck_orders_total_not_negative")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_orders_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_orders_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("channel", "external_id", name=op.f("uq_orders_channel_external_id")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_member_ordered", ["member_id", "ordered_at"], unique=False)
        batch_op.create_index("ix_orders_ordered_at", ["ordered_at"], unique=False)

    op.create_table(
        "order_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("namespace", sa.String(length=24), nullable=False),
        sa.Column("value", sa.String(length=254), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_contacts_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_contacts")),
    )
    with op.batch_alter_table("order_contacts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_order_contacts_identifier", ["kind", "namespace", "value"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_order_contacts_order_id"), ["order_id"], unique=False)

    op.create_table(
        "order_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", omo.shared.sqltypes.Money(), nullable=False),
        sa.Column("discount", omo.shared.sqltypes.Money(), nullable=False),
        sa.Column("line_total", omo.shared.sqltypes.Money(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_lines_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_order_lines_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
        sa.UniqueConstraint("order_id", "line_no", name=op.f("uq_order_lines_order_id_line_no")),
    )
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_lines_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_order_lines_product_id"), ["product_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_lines_product_id"))
        batch_op.drop_index(batch_op.f("ix_order_lines_order_id"))

    op.drop_table("order_lines")
    with op.batch_alter_table("order_contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_contacts_order_id"))
        batch_op.drop_index("ix_order_contacts_identifier")

    op.drop_table("order_contacts")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_ordered_at")
        batch_op.drop_index("ix_orders_member_ordered")

    op.drop_table("orders")
    op.drop_table("member_stats")
    with op.batch_alter_table("member_identifiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_identifiers_member_id"))

    op.drop_table("member_identifiers")
    op.drop_table("member_consents")
    with op.batch_alter_table("identity_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_merges_survivor_id"))
        batch_op.drop_index(batch_op.f("ix_identity_merges_absorbed_id"))

    op.drop_table("identity_merges")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_member_occurred")
        batch_op.drop_index("ix_events_kind_occurred")
        batch_op.drop_index("ix_events_contact")

    op.drop_table("events")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index("ix_members_status_joined")
        batch_op.drop_index("ix_members_name_birth")
        batch_op.drop_index(batch_op.f("ix_members_merged_into_id"))

    op.drop_table("members")
    op.drop_table("api_keys")
    op.drop_table("stores")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_products_category"))

    op.drop_table("products")
