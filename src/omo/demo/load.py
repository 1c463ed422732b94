"""`omo demo`: generate the world, load it through ingest.bulk, write the ground truth beside it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.orm import Session

from omo.commerce.models import Order, OrderContact, OrderLine, Product, Store
from omo.commerce.service import rebuild_stats
from omo.demo.catalogue import CATEGORIES, STORES, make_catalogue
from omo.demo.people import HABITS, SPEND_P, draw_people, process, rate_alpha
from omo.demo.plan import plan
from omo.demo.purchases import season_curves, simulate
from omo.demo.world import Ids, WorldBuilder
from omo.events.models import Event
from omo.ingest import bulk
from omo.members.models import Consent, Member, MemberIdentifier
from omo.shared.errors import Conflict

CHUNK_PEOPLE = 2_000
TABLES: list[sa.Table] = [
    t.__table__  # type: ignore[misc]
    for t in (Member, MemberIdentifier, Consent, Order, OrderLine, OrderContact, Event)
]


@dataclass(frozen=True)
class DemoSpec:
    people: int = 5_000
    seed: int = 7
    months: int = 24
    until: date | None = None  # the day the world stops (exclusive); default today in Taipei
    purchases_per_year: float | None = None  # mean purchase rate while alive; None: ≈ 2.5

    def end_day(self) -> date:
        return self.until or (datetime.now(UTC) + timedelta(hours=8)).date()

    def world_end(self) -> datetime:
        """Local (Taipei) midnight of the end day, where the world stops: as UTC."""
        until = self.end_day()
        return datetime(until.year, until.month, until.day, tzinfo=UTC) - timedelta(hours=8)


Progress = Callable[[int], None]


def load_demo(
    engine: sa.Engine, spec: DemoSpec, truth_dir: Path, progress: Progress | None = None
) -> str:
    """Generate and load the world; returns the summary line (same spec → same line)."""
    if spec.people < 1 or spec.months < 1:
        raise ValueError("people and months must be at least 1")
    alpha = rate_alpha(spec.purchases_per_year)
    with engine.connect() as conn:
        held = conn.execute(sa.select(sa.func.count()).select_from(Member.__table__)).scalar()
        stores = conn.execute(sa.select(sa.func.count()).select_from(Store.__table__)).scalar()
    if held or stores:
        raise Conflict(
            f"the database already holds {held} members and {stores} stores; "
            "the demo loads into an empty database only",
            field="database",
        )
    until = spec.end_day()
    days = round(spec.months * 365.25 / 12)
    first_day = until - timedelta(days=days)
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    now = spec.world_end()  # the world ends at local (Taipei) midnight of `until`
    rng = np.random.default_rng(spec.seed)
    cat = make_catalogue(rng)
    people = draw_people(rng, spec.people, days * 86_400, until, alpha)
    demand, online = season_curves(first_day, days)
    buys = simulate(rng, people, days, demand)
    purchase_plan = plan(rng, people, buys, cat, online)

    with engine.begin() as conn:
        store_ids = _load_stores(conn)
        product_ids = _load_products(conn, cat)
        ids = Ids({t.name: bulk.next_id(conn, t) for t in TABLES})
    builder = WorldBuilder(
        spec.seed, people, buys, cat, purchase_plan, start, now, store_ids, product_ids
    )
    records: list[dict[str, Any]] = []
    for first in range(0, spec.people, CHUNK_PEOPLE):
        last = min(spec.people, first + CHUNK_PEOPLE)
        chunk = builder.chunk(first, last, ids)
        with engine.begin() as conn:
            for table in TABLES:
                bulk.append(conn, table, chunk.rows.get(table.name, []))
        records.extend(chunk.truth_records)
        if progress:
            progress(last - first)
    with Session(engine) as session, session.begin():
        rebuild_stats(session, now=now)
    with engine.begin() as conn:
        bulk.reset_sequences(conn, [Store.__table__, Product.__table__, *TABLES])  # type: ignore[list-item]
    _write_truth(truth_dir, spec, until, people, buys, records)
    return summary(engine, spec, until)


def _load_stores(conn: sa.Connection) -> list[int]:
    first = bulk.next_id(conn, Store.__table__)  # type: ignore[arg-type]
    rows = [
        {"id": first + n, "code": code, "name": name, "region": region, "city": district,
         "address": None, "opened_on": opened, "is_active": True}
        for n, (code, name, region, district, opened) in enumerate(STORES)
    ]  # fmt: skip
    bulk.append(conn, Store.__table__, rows)  # type: ignore[arg-type]
    return [first + n for n in range(len(rows))]


def _load_products(conn: sa.Connection, cat: Any) -> list[int]:
    first = bulk.next_id(conn, Product.__table__)  # type: ignore[arg-type]
    rows = [
        {"id": first + n, "sku": cat.sku[n], "name": cat.name[n], "category": cat.category[n],
         "price": int(cat.price[n]) * 100, "unit_cost": int(cat.cost_cents[n]), "is_active": True}
        for n in range(len(cat.sku))
    ]  # fmt: skip
    bulk.append(conn, Product.__table__, rows)  # type: ignore[arg-type]
    return [first + n for n in range(len(rows))]


def _write_truth(
    truth_dir: Path,
    spec: DemoSpec,
    until: date,
    people: Any,
    buys: Any,
    records: list[dict[str, Any]],
) -> None:
    """The true person behind every record, and the true parameters of every person."""
    truth_dir.mkdir(parents=True, exist_ok=True)
    n = people.n
    last = buys.last_at
    pq.write_table(
        pa.table({
            "person_id": np.arange(n),
            "name": [people.name(i) for i in range(n)],
            "female": people.female,
            "birth_date": [people.birth_date(i) for i in range(n)],
            "habit": [HABITS[h] for h in people.habit],
            "home_store": [STORES[s][0] for s in people.home_store],
            "purchase_rate_per_day": people.rate,
            "dropout_p": people.dropout,
            "spend_nu": people.spend_nu,
            "mean_order_value": SPEND_P / people.spend_nu,
            "price_sensitive": people.price_sensitive,
            "acquired_day": people.acquired / 86_400.0,
            "purchases": buys.count,
            "alive_at_end": buys.alive_at_end,
            "last_purchase_day": last,
        }),
        truth_dir / "people.parquet",
    )  # fmt: skip
    pq.write_table(pa.Table.from_pylist(records), truth_dir / "records.parquet")
    meta = {
        "people": spec.people, "seed": spec.seed, "months": spec.months,
        "until": until.isoformat(), "purchases_per_year": spec.purchases_per_year,
        "process": process(rate_alpha(spec.purchases_per_year)),
        "categories": [{"name": c.name, "margin": c.margin} for c in CATEGORIES],
        "files": {
            "people.parquet": "one row per true person: profile, purchase-process parameters, "
                              "realised purchases (days count from the window's first day)",
            "records.parquet": "one row per channel record: its true person_id and the member_id "
                               "it was loaded as (records of one person with one member_id were "
                               "joined by a shared identifier)",
        },
    }  # fmt: skip
    (truth_dir / "truth.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2))


def summary(engine: sa.Engine, spec: DemoSpec, until: date) -> str:
    def count(table: Any, *where: Any) -> int:
        q = sa.select(sa.func.count()).select_from(table)
        for w in where:
            q = q.where(w)
        with engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)

    with engine.connect() as conn:
        cents = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(sa.type_coerce(Order.total, sa.BigInteger)), 0))
            .where(Order.status != "cancelled")
        ).scalar()  # fmt: skip
    revenue = Decimal(int(cents or 0)) / 100
    ppy = spec.purchases_per_year
    rate = "" if ppy is None else f" purchases_per_year={ppy:g}"
    return (
        f"demo people={spec.people} seed={spec.seed} months={spec.months} until={until}{rate} | "
        f"members={count(Member)} identifiers={count(MemberIdentifier)} "
        f"stores={count(Store)} products={count(Product)} orders={count(Order)} "
        f"guest_orders={count(Order, Order.member_id.is_(None))} lines={count(OrderLine)} "
        f"events={count(Event)} revenue=NT${revenue:,.2f}"
    )
