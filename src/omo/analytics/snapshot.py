"""A consistent snapshot of what analytics reads, as Arrow tables, in one read transaction.

Times leave as integer epoch seconds, money as integer cents, so every engine (DuckDB, Spark)
reads the same numbers and no time zone rule of an engine creeps in.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import URL

from omo.analytics.arrowdb import isolated, transaction
from omo.commerce.channels import COUNTED_STATUSES, OFFLINE_CHANNELS

_STATUSES = ", ".join(f"'{s}'" for s in COUNTED_STATUSES)
_OFFLINE = ", ".join(f"'{c}'" for c in sorted(OFFLINE_CHANNELS))

# A purchase is an order that counts (placed or completed) and was not refunded in full. Only
# active members' purchases count; the engine keeps those (a join here costs SQLite 7 s at 2 M).
ORDERS_SQL = f"""
SELECT id AS order_id, member_id, ordered_at, total - refunded_total AS net_cents,
       discount_total AS discount_cents,
       CASE WHEN channel IN ({_OFFLINE}) THEN 0 ELSE 1 END AS online
FROM orders
WHERE member_id IS NOT NULL AND status IN ({_STATUSES}) AND total > refunded_total
"""  # noqa: S608 - constants only

LINES_SQL = "SELECT order_id, sku, category FROM order_lines"  # the engine keeps purchases

MEMBERS_SQL = "SELECT id AS member_id, joined_at FROM members WHERE status = 'active'"


@dataclass(frozen=True)
class Snapshot:
    members: pa.Table  # member_id, joined_s
    orders: pa.Table  # order_id, member_id, ordered_s, net_cents, discount_cents, online
    lines: pa.Table  # order_id, sku, category


def read_snapshot(url: URL) -> Snapshot:
    """Members and their purchases as of one instant of the database."""
    members, orders, lines = isolated(url, _read)
    members = _epoch(members, "joined_at", "joined_s")
    orders = _epoch(orders, "ordered_at", "ordered_s")
    # SQLite's driver types a column by its values: all-NULL categories would come as int64
    lines = lines.cast(
        pa.schema([("order_id", pa.int64()), ("sku", pa.string()), ("category", pa.string())])
    )
    return Snapshot(members=members, orders=orders, lines=lines)


def _read(url: URL) -> tuple[pa.Table, pa.Table, pa.Table]:
    with transaction(url) as connection:
        return (
            connection.arrow(MEMBERS_SQL),
            connection.arrow(ORDERS_SQL),
            connection.arrow(LINES_SQL),
        )


def _epoch(table: pa.Table, column: str, name: str) -> pa.Table:
    """Timestamps (SQLite text in UTC, PostgreSQL timestamptz) → integer seconds since 1970."""
    values = table[column]
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        values = values.cast(pa.timestamp("us"))
    # the integer behind an Arrow timestamp is UTC whatever its time zone label
    micros = values.cast(pa.timestamp("us", tz=values.type.tz)).cast(pa.int64())
    seconds = pc.divide(micros, 1_000_000)
    index = table.schema.get_field_index(column)
    return table.set_column(index, name, seconds)
