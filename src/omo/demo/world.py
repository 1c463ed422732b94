"""From true people and their purchases to what the brand's channels recorded, with noise.

Each person shows up as channel accounts (a POS card, a web or app login, a Shopee or momo buyer,
a LINE binding) made when they first used that channel. Accounts that share an identifier after
normalisation are one member (the deterministic rule of the identity area); the rest stay
separate members of one person, which is what probabilistic resolution must find. The noise is
the real kind: a phone mistyped at a till, a name with a similar-looking or simplified
character, a romanised name on a marketplace, a moved address, upper-case e-mails, guest orders.

Rows come out as plain dicts for ingest.bulk (money in cents, datetimes aware UTC), in chunks of
people; every record carries its true person id into the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from omo.commerce.schemas import OrderIn
from omo.commerce.service import payload_hash
from omo.demo.catalogue import STORES, Catalogue
from omo.demo.noise import Noise, line_id, spell_email, spell_phone, token
from omo.demo.people import People, romanised
from omo.demo.plan import CHANNELS, Plan
from omo.demo.purchases import Purchases

TAIPEI = timedelta(hours=8)


@dataclass
class Account:
    """One channel's record of a person (a member record before deterministic merging)."""

    person: int
    channel: str
    created: datetime
    ids: list[tuple[str, str, str]]  # (kind, namespace, canonical value)
    raw: dict[str, str]  # how the channel spelled it (ground truth only)
    name: str
    gender: str | None
    birth_date: date | None
    address: tuple[str, str, str] | None
    store: int | None
    record_id: int = 0
    member_id: int = 0


@dataclass
class Chunk:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    truth_records: list[dict[str, Any]] = field(default_factory=list)

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)


@dataclass
class Ids:
    """The next id per table; the loader sets them from the database."""

    next: dict[str, int]

    def take(self, table: str) -> int:
        n = self.next[table]
        self.next[table] = n + 1
        return n


class WorldBuilder:
    """Builds the rows of a chunk of people; deterministic for the same seed and inputs."""

    def __init__(
        self,
        seed: int,
        people: People,
        buys: Purchases,
        cat: Catalogue,
        plan: Plan,
        start: datetime,
        now: datetime,
        store_ids: list[int],
        product_ids: list[int],
    ) -> None:
        self.seed = seed
        self.p = people
        self.buys = buys
        self.cat = cat
        self.plan = plan
        self.start = start
        self.now = now
        self.store_ids = store_ids
        self.product_ids = product_ids
        order = np.argsort(buys.person, kind="stable")
        self.by_person = order
        self.person_start = np.concatenate(
            [[0], np.cumsum(np.bincount(buys.person, minlength=people.n))]
        )
        self.noise = Noise(set(people.phone.tolist()))

    # -- time ---------------------------------------------------------------------------------

    def when(self, k: int) -> datetime:
        """The moment of purchase k: its day in Taipei time at the planned minute, in UTC."""
        day = int(self.buys.at[k])
        local = self.start + timedelta(days=day, minutes=int(self.plan.minute[k]))
        return min(local - TAIPEI, self.now - timedelta(minutes=1))

    # -- people to rows -----------------------------------------------------------------------

    def chunk(self, first: int, last: int, ids: Ids) -> Chunk:
        out = Chunk()
        for i in range(first, last):
            rng = np.random.default_rng((self.seed, 1, i))
            ks = self.by_person[self.person_start[i] : self.person_start[i + 1]]
            accounts = self.accounts(i, ks, rng)
            self.members(accounts, ids, out, rng)
            by_channel = {a.channel: a for a in accounts}
            for k in ks:
                self.order(int(k), by_channel, ids, out, rng)
            self.person_events(i, accounts, ids, out, rng)
        return out

    def accounts(self, i: int, ks: np.ndarray, rng: np.random.Generator) -> list[Account]:
        p = self.p
        name = p.name(i)
        phone = f"+8869{p.phone[i]:08d}"
        email = p.email(i)
        gender = "female" if p.female[i] else "male"
        birth = p.birth_date(i)
        home = p.address(i)
        accounts: list[Account] = []
        first_use: dict[str, datetime] = {}
        uses: dict[str, list[datetime]] = {}
        for k in ks:
            ch = CHANNELS[self.plan.channel[k]]
            uses.setdefault(ch, []).append(self.when(int(k)))
        for ch, times in uses.items():
            first_use[ch] = times[0]
        if "pos" in uses:
            # most enrol at the till on their first visit; some only on the second; some never
            times = uses["pos"]
            enrol_at = times[0] if rng.random() < 0.75 else (times[1] if len(times) > 1 else None)
            if enrol_at is not None:
                card = f"{(i * 7919 + 1_000_003) % 10**10:010d}"
                accounts.append(
                    Account(i, "pos", enrol_at, [("phone", "", phone), ("card", "", card)],
                            {"phone": spell_phone(phone, rng)}, self.noise.noisy(name, rng, 0.03),
                            gender, birth if rng.random() < 0.9 else None, home,
                            int(p.home_store[i]))
                )  # fmt: skip
                if rng.random() < 0.04 and len(times) > 2:
                    # a second card at another store, the phone mistyped by a digit
                    typo = self.noise.mistyped(phone, rng)
                    if typo:
                        accounts.append(
                            Account(i, "pos", times[2], [("phone", "", typo)],
                                    {"phone": typo}, self.noise.noisy(name, rng, 0.3), gender,
                                    birth if rng.random() < 0.7 else None, home,
                                    int(rng.integers(0, len(STORES))))
                        )  # fmt: skip
        moved = self.noise.moved(home, rng) if rng.random() < 0.12 else home
        if "web" in uses:
            ids = [("email", "", email)]
            if rng.random() < 0.6:
                ids.append(("phone", "", phone))
            accounts.append(
                Account(i, "web", first_use["web"], ids, {"email": spell_email(email, rng)},
                        self.noise.noisy(name, rng, 0.05, simplified=0.03), gender,
                        birth if rng.random() < 0.4 else None, moved, None)
            )  # fmt: skip
        signs_up = "app" in uses or (not uses and rng.random() < 0.6)
        if signs_up:
            created = first_use.get("app") or (self.start + timedelta(seconds=int(p.acquired[i])))
            ids = [("app_user", "", f"u{token(f'{self.seed}:{i}', 20)}")]
            changed_phone = rng.random() < 0.05
            ids.append(
                ("phone", "", self.noise.mistyped(phone, rng) or phone)
                if changed_phone
                else ("phone", "", phone)
            )
            if rng.random() < 0.5:
                ids.append(("email", "", email))
            accounts.append(
                Account(i, "app", min(created, self.now - timedelta(minutes=1)), ids, {},
                        self.noise.noisy(name, rng, 0.03), gender,
                        birth if rng.random() < 0.7 else None, moved, None)
            )  # fmt: skip
        for market in ("shopee", "momo"):
            if market in uses:
                buyer = self.noise.handle(name, rng)
                ids = [("marketplace_buyer", market, buyer)]
                if market == "momo" and rng.random() < 0.5:
                    ids.append(("phone", "", phone))
                shown = romanised(name) if rng.random() < 0.4 else self.noise.noisy(name, rng, 0.15)
                accounts.append(
                    Account(i, market, first_use[market], ids, {}, shown, None, None,
                            self.noise.moved(home, rng) if rng.random() < 0.15 else home, None)
                )  # fmt: skip
        # a LINE binding joins the LINE user id to one of the person's own accounts
        bindable = [a for a in accounts if a.channel in ("pos", "app")]
        if bindable and rng.random() < 0.4:
            bindable[0].ids.append(("line_id", "", line_id(self.seed, i)))
        accounts.sort(key=lambda a: a.created)
        return accounts

    def members(
        self, accounts: list[Account], ids: Ids, out: Chunk, rng: np.random.Generator
    ) -> None:
        """Accounts sharing an identifier are one member (union-find over a person's few)."""
        groups: list[list[Account]] = []
        for acc in accounts:
            keys = set(acc.ids)
            joined = [g for g in groups if any(keys & set(x) for a in g for x in [a.ids])]
            merged = [acc]
            for g in joined:
                merged.extend(g)
                groups.remove(g)
            groups.append(merged)
        for group in groups:
            group.sort(key=lambda a: a.created)
            first = group[0]
            member_id = ids.take("members")
            city, district, line = first.address or (None, None, None)
            out.add("members", {
                "id": member_id, "status": "active", "merged_into_id": None,
                "name": first.name, "gender": first.gender,
                "birth_date": next((a.birth_date for a in group if a.birth_date), None),
                "country": "TW", "postal_code": None, "city": city, "district": district,
                "address_line": line, "preferred_language": "zh-TW", "joined_at": first.created,
                "join_channel": first.channel,
                "join_store_id": self.store_ids[first.store] if first.store is not None else None,
                "created_at": first.created, "updated_at": first.created,
            })  # fmt: skip
            seen: set[tuple[str, str, str]] = set()
            for acc in group:
                acc.member_id = member_id
                acc.record_id = len(out.truth_records) + 1
                for key in acc.ids:
                    if key not in seen:
                        seen.add(key)
                        out.add("member_identifiers", {
                            "id": ids.take("member_identifiers"), "member_id": member_id,
                            "kind": key[0], "namespace": key[1], "value": key[2],
                            "source_channel": acc.channel, "created_at": acc.created,
                        })  # fmt: skip
                out.truth_records.append({
                    "person_id": acc.person, "member_id": member_id, "channel": acc.channel,
                    "created_at": acc.created, "name": acc.name,
                    "identifiers": ";".join(f"{k}:{ns}:{v}" for k, ns, v in acc.ids),
                    "raw_phone": acc.raw.get("phone"), "raw_email": acc.raw.get("email"),
                })  # fmt: skip
            if first.channel in ("pos", "app"):
                for channel, share in (
                    ("sms", 0.7),
                    ("email", 0.55),
                    ("line", 0.35),
                    ("push", 0.5),
                ):
                    out.add("member_consents", {
                        "id": ids.take("member_consents"), "member_id": member_id,
                        "channel": channel, "granted": bool(rng.random() < share),
                        "source": first.channel, "updated_at": first.created,
                    })  # fmt: skip

    def order(
        self,
        k: int,
        by_channel: dict[str, Account],
        ids: Ids,
        out: Chunk,
        rng: np.random.Generator,
    ) -> None:
        plan, cat = self.plan, self.cat
        ch = CHANNELS[plan.channel[k]]
        at = self.when(k)
        acc = by_channel.get(ch)
        known = acc is not None and acc.created <= at
        contacts = [x for x in acc.ids if x[0] != "line_id"] if (acc is not None and known) else []
        member_id = acc.member_id if (acc is not None and known) else None
        in_store = ch == "pos"
        store = int(plan.store[k]) if (in_store or plan.pickup[k]) else None
        fulfilment = "in_store" if in_store else ("store_pickup" if plan.pickup[k] else "delivery")
        lo, hi = int(plan.line_start[k]), int(plan.line_start[k + 1])
        lines = []
        subtotal = 0
        for n, li in enumerate(range(lo, hi), start=1):
            prod = int(plan.product[li])
            qty = int(plan.quantity[li])
            unit = int(cat.price[prod]) * 100
            disc = int(plan.discount_cents[li])
            subtotal += unit * qty - disc
            lines.append((n, prod, qty, unit, disc))
        shipping = 6000 if (fulfilment == "delivery" and subtotal < 99_000) else 0
        external = f"{ch.upper()}-{self.seed}-{k:08d}"
        status = (
            "cancelled"
            if plan.cancelled[k]
            else ("placed" if self.now - at < timedelta(days=2) and not in_store else "completed")
        )
        order_in = OrderIn.model_validate({
            "channel": ch, "external_id": external, "ordered_at": at,
            "store": STORES[store][0] if store is not None else None,
            "fulfilment": fulfilment, "status": status,
            "customer": [{"kind": k, "namespace": ns or None, "value": v} for k, ns, v in contacts],
            "lines": [{"sku": cat.sku[p], "quantity": q, "unit_price": f"{u // 100}.00",
                       "discount": f"{d // 100}.00"} for _, p, q, u, d in lines],
            "shipping_fee": f"{shipping // 100}.00",
        })  # fmt: skip
        order_id = ids.take("orders")
        out.add("orders", {
            "id": order_id, "channel": ch, "external_id": external,
            "payload_hash": payload_hash(order_in), "member_id": member_id,
            "store_id": self.store_ids[store] if store is not None else None,
            "fulfilment": fulfilment, "status": status, "ordered_at": at, "currency": "TWD",
            "subtotal": subtotal, "discount_total": 0, "shipping_fee": shipping,
            "total": subtotal + shipping, "refunded_total": 0, "created_at": at,
        })  # fmt: skip
        for n, prod, qty, unit, disc in lines:
            out.add("order_lines", {
                "id": ids.take("order_lines"), "order_id": order_id, "line_no": n,
                "sku": cat.sku[prod], "product_id": self.product_ids[prod],
                "name": cat.name[prod], "category": cat.category[prod], "quantity": qty,
                "unit_price": unit, "discount": disc, "line_total": unit * qty - disc,
            })  # fmt: skip
        for kind, ns, value in contacts:
            out.add("order_contacts", {
                "id": ids.take("order_contacts"), "order_id": order_id, "kind": kind,
                "namespace": ns, "value": value,
            })  # fmt: skip
        self.order_events(k, ch, at, member_id, lines, ids, out, rng)

    def order_events(
        self,
        k: int,
        ch: str,
        at: datetime,
        member_id: int | None,
        lines: list[tuple[int, int, int, int, int]],
        ids: Ids,
        out: Chunk,
        rng: np.random.Generator,
    ) -> None:
        """The funnel before an order (views, cart, checkout), abandoned carts, feedback."""
        if member_id is None:
            return
        plan, cat = self.plan, self.cat
        events: list[tuple[str, datetime, dict[str, Any]]] = []
        if ch != "pos":
            sku = cat.sku[lines[0][1]]
            t = at - timedelta(minutes=int(rng.integers(5, 90)))
            if plan.ad_click[k]:
                utm = {
                    "utm_source": str(rng.choice(["facebook", "google", "line", "instagram"])),
                    "utm_medium": "cpc",
                    "utm_campaign": f"{at.year}-{at.month:02d}-sale",
                }
                events.append(("ad_click", t - timedelta(minutes=1), utm))
            if rng.random() < 0.3:
                query = cat.noun[lines[0][1]]
                events.append(("search", t - timedelta(seconds=30), {"query": query}))
            for n in range(int(rng.integers(1, 4))):
                events.append(("view", t + timedelta(minutes=n), {"sku": sku}))
            if rng.random() < 0.1:
                events.append(("favourite", t + timedelta(minutes=3), {"sku": sku}))
            events.append(("add_to_cart", t + timedelta(minutes=4), {"sku": sku}))
            events.append(("checkout_start", at - timedelta(minutes=1), {"sku": sku}))
            for n in range(int(plan.abandoned[k])):
                other = cat.sku[int(rng.integers(0, len(cat.sku)))]
                gone = at - timedelta(days=int(rng.integers(1, 20)), minutes=n)
                events.append(("view", gone, {"sku": other}))
                events.append(("add_to_cart", gone + timedelta(minutes=2), {"sku": other}))
        elif rng.random() < 0.1:
            events.append(("staff_interaction", at - timedelta(minutes=3), {}))
        if plan.feedback[k]:
            survey = "nps" if rng.random() < 0.6 else "csat"
            score = (
                int(np.clip(rng.normal(8, 2.2), 0, 10))
                if survey == "nps"
                else int(np.clip(rng.normal(4.1, 0.9), 1, 5))
            )
            events.append(("feedback", at + timedelta(days=2), {"survey": survey, "score": score}))
        store_id = self.store_ids[int(plan.store[k])] if ch == "pos" else None
        for n, (kind, when, extra) in enumerate(events):
            if when >= self.now:
                continue
            self.event(ids, out, f"{ch}-{self.seed}-{k}-{n}", kind, when, ch, member_id,
                       store_id if kind == "staff_interaction" else None, extra)  # fmt: skip

    def person_events(
        self, i: int, accounts: list[Account], ids: Ids, out: Chunk, rng: np.random.Generator
    ) -> None:
        """LINE follows (bound or anonymous) and event sign-ups."""
        bound = next((a for a in accounts if any(x[0] == "line_id" for x in a.ids)), None)
        if bound is not None or rng.random() < 0.1:
            at = (
                bound.created if bound else self.start + timedelta(seconds=int(self.p.acquired[i]))
            ) + timedelta(hours=1)
            if at < self.now:
                contact = None if bound else ("line_id", "", line_id(self.seed, i))
                self.event(ids, out, f"line-{self.seed}-{i}", "line_follow", at, "line",
                           bound.member_id if bound else None, None, {}, contact)  # fmt: skip
        if accounts and rng.random() < 0.04:
            at = accounts[0].created + timedelta(days=int(rng.integers(1, 60)))
            if at < self.now:
                extra = {"properties": {"event": "門市會員日"}}
                self.event(ids, out, f"signup-{self.seed}-{i}", "event_signup", at, "app",
                           accounts[0].member_id, None, extra)  # fmt: skip

    def event(
        self,
        ids: Ids,
        out: Chunk,
        event_id: str,
        kind: str,
        at: datetime,
        channel: str,
        member_id: int | None,
        store_id: int | None,
        extra: dict[str, Any],
        contact: tuple[str, str, str] | None = None,
    ) -> None:
        row = {
            "id": ids.take("events"), "event_id": event_id, "kind": kind, "occurred_at": at,
            "channel": channel, "member_id": member_id, "store_id": store_id,
            "sku": None, "query": None, "utm_source": None, "utm_medium": None,
            "utm_campaign": None, "survey": None, "score": None, "properties": None,
            "contact_kind": contact[0] if contact else None,
            "contact_namespace": contact[1] if contact else None,
            "contact_value": contact[2] if contact else None, "created_at": at,
        }  # fmt: skip
        row.update(extra)
        out.add("events", row)
