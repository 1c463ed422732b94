"""The orders every benchmark replays: a busy chain's mix, deterministic for a seed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

STORES = [f"{city}-{n:03d}" for city in ("TPE", "NTP", "TXG", "KHH") for n in (101, 102, 103)]
CHANNELS = ["pos"] * 5 + ["web"] * 2 + ["app", "shopee", "momo"]


def make_orders(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    people = max(1, n // 3)  # so most customers come back
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    step = timedelta(days=300) / max(n, 1)  # all within the past, whatever n is
    orders = []
    for i in range(n):
        channel = rng.choice(CHANNELS)
        person = rng.randrange(people)
        phone = f"09{person:08d}"
        customer: list[dict[str, str]] = []
        if rng.random() > 0.15:  # the rest are guests
            dashed = f"{phone[:4]}-{phone[4:7]}-{phone[7:]}"
            spelled = rng.choice([phone, dashed, f"+886{phone[1:]}"])
            customer.append({"kind": "phone", "value": spelled})
            if channel != "pos" and rng.random() < 0.5:
                customer.append({"kind": "email", "value": f"P{person}@Example.com"})
        lines = [
            {
                "sku": f"SKU-{rng.randrange(300):04d}",
                "quantity": rng.randint(1, 3),
                "unit_price": f"{rng.randrange(99, 2990)}.00",
            }
            for _ in range(rng.randint(1, 4))
        ]
        order: dict[str, Any] = {
            "channel": channel,
            "external_id": f"{channel.upper()}-{i:07d}",
            "ordered_at": (t0 + i * step).isoformat(),
            "customer": customer,
            "lines": lines,
        }
        if channel == "pos":
            order["store"] = rng.choice(STORES)
        orders.append(order)
    return orders


IDENT_COLUMNS = ("phone", "email")
CSV_HEADER = (
    "channel", "external_id", "ordered_at", "store", *IDENT_COLUMNS,
    "sku", "quantity", "unit_price",
)  # fmt: skip


def csv_rows(orders: list[dict[str, Any]]) -> list[list[Any]]:
    """The orders in `omo import`'s columns: one row per line."""
    rows = []
    for o in orders:
        ids = {c["kind"]: c["value"] for c in o["customer"]}
        for li in o["lines"]:
            rows.append([
                o["channel"], o["external_id"], o["ordered_at"], o.get("store"),
                ids.get("phone"), ids.get("email"), li["sku"], li["quantity"], li["unit_price"],
            ])  # fmt: skip
    return rows
