"""A consistent snapshot of what analytics reads, as Arrow tables, in one read transaction.

Times leave as integer epoch seconds, money as integer cents, so every engine (DuckDB, Spark)
reads the same numbers and no time zone rule of an engine creeps in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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

# the engine keeps the purchases' lines; COALESCE: SQLite's driver types a column by its first
# rows, and lines of SKUs without a category there would make the later ones a type mismatch
LINES_SQL = "SELECT order_id, sku, COALESCE(category, '') AS category FROM order_lines"

MEMBERS_SQL = "SELECT id AS member_id, joined_at FROM members WHERE status = 'active'"

# members' recent behaviour for the rule language (views, carts, ad clicks, the last NPS)
EVENT_KINDS = ("view", "add_to_cart", "ad_click", "feedback")
EVENTS_DAYS = 90
EVENTS_SQL = (
    # COALESCE: SQLite's driver types a column by its first rows, mostly NULL surveys here
    "SELECT member_id, kind, occurred_at, COALESCE(survey, '') AS survey, score FROM events "
    "WHERE member_id IS NOT NULL AND kind IN ({kinds}) AND occurred_at >= '{since}'"
)


@dataclass(frozen=True)
class Snapshot:
    members: pa.Table  # member_id, joined_s
    orders: pa.Table  # order_id, member_id, ordered_s, net_cents, discount_cents, online
    lines: pa.Table  # order_id, sku, category
    events: pa.Table  # member_id, kind, occurred_s, survey, score (the last EVENTS_DAYS)


def read_snapshot(url: URL, *, as_of: datetime) -> Snapshot:
    """Members, their purchases and recent events as of one instant of the database."""
    since = as_of.astimezone(UTC) - timedelta(days=EVENTS_DAYS)
    # a literal of our own making, spelled as each database stores its timestamps
    spelled = (
        since.strftime("%Y-%m-%d %H:%M:%S.%f") if url.get_backend_name() == "sqlite"
        else since.isoformat()
    )  # fmt: skip
    events_sql = EVENTS_SQL.format(kinds=", ".join(f"'{k}'" for k in EVENT_KINDS), since=spelled)
    members, orders, lines, events = isolated(url, _read, events_sql)
    members = _epoch(members, "joined_at", "joined_s")
    orders = _epoch(orders, "ordered_at", "ordered_s")
    lines = lines.cast(
        pa.schema([("order_id", pa.int64()), ("sku", pa.string()), ("category", pa.string())])
    )
    events = _epoch(events, "occurred_at", "occurred_s").cast(
        pa.schema([("member_id", pa.int64()), ("kind", pa.string()), ("occurred_s", pa.int64()),
                   ("survey", pa.string()), ("score", pa.int64())])
    )  # fmt: skip
    return Snapshot(members=members, orders=orders, lines=lines, events=events)


def _read(url: URL, events_sql: str) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
    with transaction(url) as connection:
        return (
            connection.arrow(MEMBERS_SQL),
            connection.arrow(ORDERS_SQL),
            connection.arrow(LINES_SQL),
            connection.arrow(events_sql),
        )


def _epoch(table: pa.Table, column: str, name: str) -> pa.Table:
    """Timestamps (SQLite text in UTC, PostgreSQL timestamptz) → integer seconds since 1970."""
    values = table[column]
    index = table.schema.get_field_index(column)
    if table.num_rows == 0:  # no values to type the column by
        return table.set_column(index, name, pa.array([], pa.int64()))
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        values = values.cast(pa.timestamp("us"))
    # the integer behind an Arrow timestamp is UTC whatever its time zone label
    micros = values.cast(pa.timestamp("us", tz=values.type.tz)).cast(pa.int64())
    seconds = pc.divide(micros, 1_000_000)
    return table.set_column(index, name, seconds)
