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

from omo.analytics.arrowdb import Connection, isolated_in_turn, transaction
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
EVENTS_INDEX = "INDEXED BY ix_events_member_occurred"
EVENTS_SQL = (
    # COALESCE: SQLite's driver types a column by its first rows, mostly NULL surveys here
    "SELECT member_id, kind, occurred_at, COALESCE(survey, '') AS survey, score FROM events "
    "{indexed} WHERE member_id IS NOT NULL AND kind IN ({kinds}) AND occurred_at >= '{since}'"
)


@dataclass(frozen=True)
class Snapshot:
    members: pa.Table  # member_id, joined_s
    orders: pa.Table  # order_id, member_id, ordered_s, net_cents, discount_cents, online
    lines: pa.Table  # order_id, sku, category: codes into skus and categories (see _coded)
    events: pa.Table  # member_id, kind, occurred_s, survey, score (the last EVENTS_DAYS)
    skus: pa.Array  # the SKU of each code
    categories: pa.Array  # the category of each code


def recent_events_sql(since: datetime, *, sqlite: bool) -> str:
    """The query of the members' events since `since`, for SQLite or PostgreSQL."""
    # a literal of our own making, spelled as each database stores its timestamps
    spelled = since.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else since.isoformat()
    return EVENTS_SQL.format(
        kinds=", ".join(f"'{k}'" for k in EVENT_KINDS), since=spelled,
        # the member index holds every column read (migration 0021): one scan of it beats the
        # kind/time range with a table look-up per event (1M world: 1.6 s against 4.1 s), but
        # SQLite's planner, without statistics, picks the range
        indexed=EVENTS_INDEX if sqlite else "",
    )  # fmt: skip


def read_snapshot(url: URL, *, as_of: datetime) -> Snapshot:
    """Members, their purchases and recent events as of one instant of the database, and the
    purchases' lines. On PostgreSQL all in one repeatable-read transaction. On SQLite two
    readers at once, one reading members, orders and events, the other the lines, in a read
    transaction that begins after the first's: it sees every line of the orders read (a line is
    written with its order and never changed) and maybe lines of later orders, which the
    engine's join with the orders drops."""
    since = as_of.astimezone(UTC) - timedelta(days=EVENTS_DAYS)
    sqlite = url.get_backend_name() == "sqlite"
    events_sql = recent_events_sql(since, sqlite=sqlite)
    if sqlite:
        people, coded = isolated_in_turn(url, (_read_people, events_sql), (_read_lines,))
    else:
        people, coded = _read_all(url, events_sql)
    members, orders, events = people
    lines, skus, categories = coded
    return Snapshot(
        members=members, orders=orders, lines=lines, events=events, skus=skus,
        categories=categories,
    )  # fmt: skip


People = tuple[pa.Table, pa.Table, pa.Table]  # members, orders, events
Coded = tuple[pa.Table, pa.Array, pa.Array]  # lines, the SKU and the category of each code


def _read_all(url: URL, events_sql: str) -> tuple[People, Coded]:
    with transaction(url) as connection:
        return _people(connection, events_sql), _coded(connection.arrow(LINES_SQL))


def _read_people(url: URL, events_sql: str) -> People:
    with transaction(url) as connection:
        return _people(connection, events_sql)


def _read_lines(url: URL) -> Coded:
    with transaction(url) as connection:
        return _coded(connection.arrow(LINES_SQL))


def _people(connection: Connection, events_sql: str) -> People:
    members = _epoch(connection.arrow(MEMBERS_SQL), "joined_at", "joined_s")
    orders = _epoch(connection.arrow(ORDERS_SQL), "ordered_at", "ordered_s")
    events = _epoch(connection.arrow(events_sql), "occurred_at", "occurred_s").cast(
        pa.schema([("member_id", pa.int64()), ("kind", pa.string()), ("occurred_s", pa.int64()),
                   ("survey", pa.string()), ("score", pa.int64())])
    )  # fmt: skip
    return members, orders, events


def _coded(lines: pa.Table) -> Coded:
    """Lines with each SKU and category as an int32 code, and the names of the codes. The
    basket joins and groups compare codes, not strings: 40 % faster on DuckDB at 18 M lines. A
    line without a category has a null code."""
    sku = pc.dictionary_encode(lines["sku"].cast(pa.string())).combine_chunks()
    category = lines["category"].cast(pa.string())
    category = pc.if_else(pc.equal(category, ""), None, category)
    category = pc.dictionary_encode(category).combine_chunks()
    table = pa.table(
        {"order_id": lines["order_id"].cast(pa.int64()), "sku": sku.indices,
         "category": category.indices},
        schema=LINES_SCHEMA,
    )  # fmt: skip
    return table, sku.dictionary, category.dictionary


LINES_SCHEMA = pa.schema([("order_id", pa.int64()), ("sku", pa.int32()), ("category", pa.int32())])


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
