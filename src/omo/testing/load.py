"""A day of a busy chain replayed against a running `omo serve`: look-ups at the till, quotes,
checkouts (some with the member's coupon or points), refunds of earlier sales, and web-shop
events — each request retried on a time-out, a dropped connection or a 5xx with the same
idempotency key until it is answered. Used by bench/load.py and by the fault tests, which kill
the server or restart the database in the middle and then check that nothing was lost or
counted twice (`verify`).

Why not locust: its workers are gevent greenlets, which add a second event loop and monkey
patching for what a pool of threads with httpx does here in 300 lines, and what the fault tests
need most — the exact list of sales the server acknowledged, to compare with the database —
is easiest kept by the driver itself.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from omo.apikeys.service import create_key
from omo.commerce import service as commerce
from omo.commerce.schemas import ProductUpsert, StoreUpsert
from omo.coupons import service as coupons
from omo.coupons.rules import CouponTemplate
from omo.db import UnitOfWork
from omo.points import service as points
from omo.points.schemas import PointsChange
from omo.transfer.importer import import_file

# Share of each kind of request in a day at the tills and the web shop.
MIX = {"lookup": 30, "quote": 15, "commit": 30, "refund": 5, "events": 20}
CATEGORIES = ("服飾", "美妝保養", "鞋包", "家居")
GIFTED_POINTS = 500  # given to the members who pay with points
RETRYABLE = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class World:
    key: str
    phones: list[str]
    members: list[int]  # the member of each phone, in the same order
    stores: list[str]
    skus: list[str]
    coupons: dict[int, str]  # member id → their one coupon
    pointed: list[int]  # members holding GIFTED_POINTS


def build_world(uow: UnitOfWork, *, members: int = 2_000, seed: int = 1) -> World:
    """Stores, products, members (by phone, through `omo import`), a coupon for a tenth of
    them and points for another tenth, and an API key. The database is migrated already."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible world, not a secret
    stores = [f"S{n:02d}" for n in range(1, 13)]
    for n, code in enumerate(stores):
        commerce.save_store(uow, code=code, data=StoreUpsert(name=f"門市 {n + 1}", region="台北市"))
    skus = [f"SKU-{n:03d}" for n in range(40)]
    for n, sku in enumerate(skus):
        price = Decimal(rng.randrange(200, 3000, 10))
        commerce.save_product(uow, sku=sku, data=ProductUpsert(
            name=f"商品 {n}", category=CATEGORIES[n % len(CATEGORIES)], price=price,
            unit_cost=(price * Decimal("0.55")).quantize(Decimal(1)),
        ))  # fmt: skip
    phones = [f"0912{n:06d}" for n in range(members)]
    with uow.read() as session:
        before = session.execute(sa.text("SELECT coalesce(max(id), 0) FROM members")).scalar()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "members.csv"
        path.write_text(
            "phone,name\n" + "".join(f"{p},會員{n}\n" for n, p in enumerate(phones)),
            encoding="utf-8",
        )
        import_file(uow, kind="members", path=path)
    with uow.read() as session:
        # the import enrols the file's rows in order, each with a new id above those before
        ids = list(session.execute(
            sa.text("SELECT id FROM members WHERE id > :before ORDER BY id"), {"before": before}
        ).scalars())  # fmt: skip
    if len(ids) != members:
        raise RuntimeError(f"the load world needs a fresh set of phones: {len(ids)} enrolled")
    template = CouponTemplate(
        name="滿1000減100", kind="spend_get_off", spend=Decimal(1000), amount=Decimal(100)
    )
    coupons.put_template(uow, code="LOAD100", template=template)
    holders = ids[: len(ids) // 10]
    issued = coupons.issue(uow, template_code="LOAD100", member_ids=holders, key="load").issued
    pointed = ids[len(ids) // 10 : len(ids) // 5]
    for mid in pointed:
        points.adjust(uow, member_id=mid, change=PointsChange(
            points=GIFTED_POINTS, idempotency_key=f"load-gift-{mid}", reason="load test",
        ), actor="load")  # fmt: skip
    key = create_key(uow, name="load", store_code=None, scopes=None).key
    held = {c.member_id: c.code for c in issued if c.member_id is not None}
    return World(key, phones, ids, stores, skus, held, pointed)


@dataclass
class Outcome:
    """What the clients saw. `commits` and `refunds` are what the server acknowledged."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    retries: int = 0
    refused: int = 0  # business refusals (a coupon already used …), answered correctly
    replays: int = 0  # sales whose first try was recorded but whose answer never arrived
    commits: dict[str, dict[str, Any]] = field(default_factory=dict)  # external id → result
    refunds: dict[int, str] = field(default_factory=dict)  # order id → refund key
    elapsed: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def rate(self, kind: str | None = None) -> float:
        n = sum(len(v) for k, v in self.latencies.items() if kind in (None, k))
        return n / self.elapsed if self.elapsed else 0.0

    def quantiles(self, kind: str) -> tuple[float, float, float]:
        """p50, p95, p99 in ms."""
        values = self.latencies.get(kind, [])
        if len(values) < 2:
            return (values[0] * 1000,) * 3 if values else (0.0, 0.0, 0.0)
        q = statistics.quantiles(values, n=100, method="inclusive")
        return q[49] * 1000, q[94] * 1000, q[98] * 1000


class Plan:
    """The day's requests, drawn in order from one seeded generator; thread-safe `next`."""

    def __init__(self, world: World, *, seed: int, run: str) -> None:
        self.world, self.run = world, run
        self.rng = random.Random(seed)  # noqa: S311 - a reproducible day, not a secret
        self.n = 0
        self.lock = threading.Lock()
        self.unused_coupons = dict(world.coupons)
        self.points_left = dict.fromkeys(world.pointed, GIFTED_POINTS)
        self.refundable: list[int] = []  # order ids acknowledged and not yet refunded
        self.kinds = [k for k, w in MIX.items() for _ in range(w)]

    def acknowledged(self, order_id: int) -> None:
        with self.lock:
            self.refundable.append(order_id)

    def next(self) -> tuple[str, str, dict[str, Any], str]:
        """(kind, method, body or query, path) of the next request."""
        with self.lock:
            self.n += 1
            kind = self.rng.choice(self.kinds)
            if kind == "refund" and not self.refundable:
                kind = "lookup"
            return kind, *self._request(kind)

    def _request(self, kind: str) -> tuple[str, dict[str, Any], str]:
        w, rng, n = self.world, self.rng, self.n
        who = rng.randrange(len(w.phones))
        phone, member = w.phones[who], w.members[who]
        if kind == "lookup":
            return "GET", {"phone": phone}, "/api/v1/members/lookup"
        if kind == "events":
            events = [{
                "event_id": f"{self.run}-e{n}-{i}", "kind": rng.choice(["view", "add_to_cart"]),
                "occurred_at": "2026-11-01T10:00:00+08:00", "channel": "web",
                "member_id": member, "sku": rng.choice(w.skus),
            } for i in range(5)]  # fmt: skip
            return "POST", {"events": events}, "/api/v1/events"
        if kind == "refund":
            order = self.refundable.pop(rng.randrange(len(self.refundable)))
            return (
                "POST",
                {"idempotency_key": f"{self.run}-r{order}"},
                f"/api/v1/orders/{order}/refund",
            )
        lines = [{"sku": sku, "quantity": rng.randint(1, 2)}
                 for sku in rng.sample(w.skus, rng.randint(1, 3))]  # fmt: skip
        body: dict[str, Any] = {
            "channel": "pos", "store": rng.choice(w.stores), "lines": lines,
            "customer": [{"kind": "phone", "value": phone}],
        }  # fmt: skip
        if kind == "commit":
            body["external_id"] = f"{self.run}-{n}"
            if member in self.unused_coupons and rng.random() < 0.5:
                body["coupon_codes"] = [self.unused_coupons.pop(member)]
            spend = rng.choice([0, 10, 50])
            if spend and self.points_left.get(member, 0) >= spend:
                self.points_left[member] -= spend
                body["points"] = spend
        return "POST", body, "/api/v1/checkout/" + kind


def run_load(
    base: str, world: World, *, rate: float, seconds: float, clients: int = 16,
    seed: int = 7, run: str = "L", retry_for: float = 60.0, timeout: float = 10.0,
    first_timeout: float | None = None,
) -> Outcome:  # fmt: skip
    """Offer `rate` requests/s for `seconds` from `clients` threads (each request starts on its
    slot of the schedule, or at once when the clients are behind it). `first_timeout`: the
    first try of each request gives up this soon (its answer is lost; the retries wait
    `timeout`)."""
    plan = Plan(world, seed=seed, run=run)
    out = Outcome()
    start = time.perf_counter()
    slots = iter(range(10**9))
    slot_lock = threading.Lock()

    def slot() -> float | None:
        with slot_lock:
            at = start + next(slots) / rate
        return at if at - start < seconds else None

    def client() -> None:
        headers = {"Authorization": f"Bearer {world.key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=timeout) as h:
            while (at := slot()) is not None:
                if (wait := at - time.perf_counter()) > 0:
                    time.sleep(wait)
                kind, method, body, path = plan.next()
                _send(h, out, plan, kind, method, path, body, retry_for, first_timeout)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.elapsed = time.perf_counter() - start
    return out


def _send(
    h: httpx.Client, out: Outcome, plan: Plan, kind: str, method: str, path: str,
    body: dict[str, Any], retry_for: float, first_timeout: float | None,
) -> None:  # fmt: skip
    deadline = time.perf_counter() + retry_for
    pause = 0.05
    wait: Any = first_timeout if first_timeout is not None else httpx.USE_CLIENT_DEFAULT
    while True:
        t = time.perf_counter()
        try:
            if method == "GET":
                r = h.get(path, params=body, timeout=wait)
            else:
                r = h.post(path, json=body, timeout=wait)
            status: int | None = r.status_code
        except httpx.TransportError:  # time-outs, refused and dropped connections
            status = None
        took = time.perf_counter() - t
        if status is not None and status not in RETRYABLE:
            break
        if time.perf_counter() + pause > deadline:
            with out.lock:
                out.errors.append(f"{kind} {path}: no answer in {retry_for:.0f} s ({status})")
            return
        with out.lock:
            out.retries += 1
        wait = httpx.USE_CLIENT_DEFAULT
        time.sleep(pause)
        pause = min(pause * 2, 1.0)
    with out.lock:
        out.latencies[kind].append(took)
        if _refused_by_the_rules(r):
            out.refused += 1
        elif r.status_code >= 400:
            out.errors.append(f"{kind} {path}: {r.status_code} {r.text[:200]}")
        elif kind == "commit":
            out.commits[body["external_id"]] = r.json()
            out.replays += r.status_code == 200
        elif kind == "refund":
            out.refunds[int(path.split("/")[4])] = body["idempotency_key"]
    if kind == "commit" and r.status_code in (200, 201):
        plan.acknowledged(r.json()["order"]["id"])


def _refused_by_the_rules(r: httpx.Response) -> bool:
    """A 422 that is the rules speaking (the coupon does not apply, too many points), not a
    request the driver got wrong."""
    if r.status_code != 422:
        return False
    detail = r.json().get("detail") or [{}]
    return detail[0].get("loc") == ["body", "code"] or detail[0].get("type") in (
        "points_over_cap", "insufficient_points",
    )  # fmt: skip


def verify(engine: sa.Engine, out: Outcome, *, run: str = "L") -> list[str]:
    """Differences between what the clients were told and what the database holds: every
    acknowledged sale recorded once and nothing else, each with its points earned once and its
    coupon spent once, every acknowledged refund applied once, and `omo check`'s
    reconciliations empty. Returns the differences; [] means nothing lost or doubled."""
    problems: list[str] = []
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT o.external_id, o.id, o.total, o.refunded_total, "
                "(SELECT count(*) FROM points_entries p WHERE p.order_id = o.id "
                " AND p.kind = 'earn') AS earns, "
                "(SELECT count(*) FROM coupon_redemptions c WHERE c.order_id = o.id) AS uses "
                "FROM orders o WHERE o.external_id LIKE :run"
            ),
            {"run": f"{run}-%"},
        ).all()
        refunds: dict[int, int] = dict(conn.execute(sa.text(
            "SELECT order_id, count(*) FROM order_refunds GROUP BY order_id"
        )).all())  # fmt: skip
    held = {r.external_id: r for r in rows}
    for ext, result in out.commits.items():
        row = held.get(ext)
        if row is None:
            problems.append(f"acknowledged sale {ext} is not in the database")
            continue
        if row.id != result["order"]["id"]:
            problems.append(f"sale {ext}: acknowledged as order {result['order']['id']}, "
                            f"recorded as {row.id}")  # fmt: skip
        if row.earns != (1 if result["points_earned"] else 0):
            problems.append(f"sale {ext}: {row.earns} earn entries for {result['points_earned']}")
        price = result.get("price") or {}
        applied = sum(1 for c in price.get("coupons", []) if c["applied"])
        if price and row.uses != applied:
            problems.append(f"sale {ext}: {row.uses} coupon uses, {applied} acknowledged")
    for ext in held.keys() - out.commits.keys():
        problems.append(f"sale {ext} is recorded but no client was told so")
    by_id = {r.id: r for r in rows}
    for order_id in out.refunds:
        row = by_id.get(order_id)
        if row is None or row.refunded_total != row.total or refunds.get(order_id) != 1:
            problems.append(f"acknowledged refund of order {order_id} is not applied once")
    with UnitOfWork(engine).read() as session:
        problems += points.check_ledger(session)
        problems += coupons.check_counters(session)
        problems += commerce.check_orders_and_stats(session)
    return problems


def summary(out: Outcome) -> Iterator[str]:
    yield (f"{out.rate():7.1f} req/s over {out.elapsed:5.1f} s, {len(out.errors)} errors, "
           f"{out.retries} retries, {out.replays} sales replayed, "
           f"{out.refused} refused as the rules say")  # fmt: skip
    for kind in MIX:
        if kind in out.latencies:
            p50, p95, p99 = out.quantiles(kind)
            yield (f"  {kind:7} {out.rate(kind):6.1f}/s  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  "
                   f"p99 {p99:6.1f} ms")  # fmt: skip
    for error in out.errors[:5]:
        yield f"  error: {error}"
