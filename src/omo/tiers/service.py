"""Use cases of the tiers area: the programme, evaluating a member (in the order's
transaction), the periodic review (downgrades, percentile levels), what a member sees, and the
spend distribution a merchant places thresholds on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import BigInteger, bindparam, case, func, select, type_coerce
from sqlalchemy.orm import Session

from omo.audit import service as audit
from omo.commerce.channels import COUNTED_STATUSES
from omo.commerce.models import Order
from omo.coupons import service as coupons
from omo.db import UnitOfWork
from omo.members import service as members
from omo.members.models import Member
from omo.messaging import outbox
from omo.points.models import PointsEntry
from omo.shared import clock
from omo.shared.errors import ValidationFailed
from omo.shared.pins import LIMIT, forget, memo
from omo.shared.prepared import Prepared
from omo.shared.rows import rows_of
from omo.shared.versions import NewestVersion
from omo.tiers import policy, shipping
from omo.tiers.models import MemberTier, TierChange, TierProgrammeVersion
from omo.tiers.policy import DEFAULT_PROGRAMME, Standing, TierProgramme
from omo.tiers.schemas import (
    ChangeRead,
    Distribution,
    LevelCount,
    MemberTierRead,
    SpendBucket,
    TierProgrammeRead,
)

EARNED_KINDS = ("earn", "bonus")


def fact_key(member_id: int, at: datetime) -> str:
    """The key of the TierChanged fact of a change at `at`: a journey enters on it once, and
    a return that takes the change back finds the entries by it."""
    return f"tier:{member_id}:{clock.as_utc(at).isoformat()}"


def programme_in_force(session: Session) -> TierProgramme:
    """The newest programme, read once per transaction (a commit asks several times)."""
    cached = session.info.get("tier_programme")
    if isinstance(cached, TierProgramme):
        return cached
    p = PROGRAMME_VERSION.get(session, default=DEFAULT_PROGRAMME)
    session.info["tier_programme"] = p
    return p


def known_level(session: Session, code: str, *, field: str) -> None:
    """Refuses a level code the programme in force does not have (a reward's or a coupon's
    min_level)."""
    levels = [lv.code for lv in programme_in_force(session).levels]
    if code not in levels:
        raise ValidationFailed(
            f"no tier level {code!r} in the programme ({', '.join(levels)})", field=field,
            ctx={"level": code, "levels": ", ".join(levels)},
        )  # fmt: skip


# public for checkout, which reads it with the points rules in one statement
PROGRAMME_VERSION = NewestVersion(
    TierProgrammeVersion.__table__,  # type: ignore[arg-type]
    "programme",
    TierProgramme.model_validate,
)


def get_programme(uow: UnitOfWork) -> TierProgrammeRead:
    with uow.read() as session:
        row = session.scalar(
            select(TierProgrammeVersion).order_by(TierProgrammeVersion.id.desc()).limit(1)
        )
        if row is None:
            return TierProgrammeRead(version=0, programme=DEFAULT_PROGRAMME)
        return TierProgrammeRead(
            version=row.id, programme=TierProgramme.model_validate(row.programme)
        )


def set_programme(
    uow: UnitOfWork, *, programme: TierProgramme, actor: str | None
) -> TierProgrammeRead:
    """New levels apply from the next evaluation; members on a removed level fall to the base
    level's benefits until their next evaluation places them."""
    with uow.write() as session:
        for n, lv in enumerate(programme.levels):
            gift = lv.benefits.monthly_gift
            if gift is not None and not coupons.has_template(session, gift):
                raise ValidationFailed(
                    f"no coupon template {gift!r}", field=f"levels.{n}.benefits.monthly_gift"
                )
        row = TierProgrammeVersion(
            programme=programme.model_dump(mode="json"), actor=actor, created_at=clock.now()
        )
        session.add(row)
        session.flush()
        audit.record(session, actor=actor, action="tiers.programme", target=f"tiers:v{row.id}")
        return TierProgrammeRead(version=row.id, programme=programme)


def window_start(p: TierProgramme, now: datetime) -> datetime:
    return now - timedelta(days=round(p.window_months * 365.25 / 12))


def standing_of(
    session: Session, *, member_id: int, p: TierProgramme, now: datetime,
    since: datetime | None = None,
) -> Standing:  # fmt: skip
    return standings_of(session, member_ids=[member_id], p=p, now=now, since=since)[member_id]


# the sums of a tier standing in one statement built once: a sale evaluates its member's tier,
# and building these expressions again cost more than running them; one statement, not one
# per table, since a statement's round trip through SQLAlchemy costs more than either sum
_NET = type_coerce(Order.total, BigInteger) - type_coerce(Order.refunded_total, BigInteger)
_NONE = sa.literal(0, BigInteger)


def _window(orders_of: Any, points_of: Any) -> sa.CompoundSelect[Any]:
    return sa.union_all(
        select(Order.member_id, func.sum(_NET), func.count(Order.id), _NONE, func.max(_NET))
        .where(
            orders_of,
            Order.status.in_([sa.literal(s) for s in COUNTED_STATUSES]),
            Order.ordered_at >= bindparam("since", type_=Order.ordered_at.type),
            Order.ordered_at <= bindparam("now", type_=Order.ordered_at.type),
        )
        .group_by(Order.member_id),
        select(PointsEntry.member_id, _NONE, _NONE, func.sum(PointsEntry.points), _NONE)
        .where(
            points_of,
            PointsEntry.kind.in_([sa.literal(k) for k in EARNED_KINDS]),
            PointsEntry.created_at >= bindparam("since", type_=PointsEntry.created_at.type),
        )
        .group_by(PointsEntry.member_id),
    )


_WINDOW = _window(
    Order.member_id.in_(bindparam("ids", expanding=True)),
    PointsEntry.member_id.in_(bindparam("ids", expanding=True)),
)
# a sale's one member: prepared (shared/prepared.py), which expands no IN list
_WINDOW_ONE = Prepared(
    _window(Order.member_id == bindparam("member"), PointsEntry.member_id == bindparam("member"))
)


def standings_of(
    session: Session, *, member_ids: Sequence[int], p: TierProgramme, now: datetime,
    since: datetime | None = None,
) -> dict[int, Standing]:  # fmt: skip
    """Window spend, earned points and orders of each member, grouped in SQL: over the window
    ending `now`, or from `since` to `now`."""
    since = window_start(p, now) if since is None else since
    spend: dict[int, tuple[int, int, int]] = {}  # cents, orders, the largest order's cents
    earned: dict[int, int] = {}
    ids = sorted(set(member_ids))
    session.flush()  # what the ORM holds unsent counts
    conn = session.connection()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows: Any = (
            _WINDOW_ONE.rows(session, {"member": chunk[0], "since": since, "now": now})
            if len(chunk) == 1
            else conn.execute(_WINDOW, {"ids": chunk, "since": since, "now": now})
        )
        for mid, cents, orders, points, largest in rows:
            if orders:  # a row of orders counts at least one; a row of points, none
                spend[int(mid)] = (int(cents or 0), int(orders), int(largest or 0))
            else:
                earned[int(mid)] = int(points or 0)
    return {
        m: Standing(
            spend=Decimal(spend.get(m, (0, 0, 0))[0]) / 100,
            points=earned.get(m, 0),
            orders=spend.get(m, (0, 0, 0))[1],
            top_share=None,
            largest=Decimal(spend.get(m, (0, 0, 0))[2]) / 100,
        )
        for m in ids
    }


Held = tuple[str, datetime, datetime]  # a member's tier row: (level, since, review_at)
_TIERS: sa.Table = MemberTier.__table__  # type: ignore[assignment]
_HELD = select(_TIERS.c.member_id, _TIERS.c.level, _TIERS.c.since, _TIERS.c.review_at)
_HELD_ONE = Prepared(_HELD.where(_TIERS.c.member_id == bindparam("member")))
_HELD_MANY = _HELD.where(_TIERS.c.member_id.in_(bindparam("ids", expanding=True)))


def level_ahead(session: Session, *, member_id: int) -> None:
    """level_of's read of the member's tier row, read ahead (Prepared.ahead)."""
    if member_id not in memo(session, "tier_rows"):
        _HELD_ONE.ahead(session, {"member": member_id})


def _held(session: Session, member_ids: Sequence[int]) -> dict[int, Held | None]:
    """The members' tier rows (None: never placed), read in Core once per transaction: a sale
    asks for its member's level when it prices, again for the points multiplier and again when
    it places the member; the placing below keeps what it writes here."""
    known = memo(session, "tier_rows")
    wanted = [m for m in member_ids if m not in known]
    found: dict[int, Held | None] = {}
    if wanted:
        conn = session.connection()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows: Any = (
                _HELD_ONE.rows(session, {"member": chunk[0]})
                if len(chunk) == 1
                else conn.execute(_HELD_MANY, {"ids": chunk})
            )
            found.update({mid: (level, since, review) for mid, level, since, review in rows})
        if len(wanted) <= LIMIT:  # a batch larger than the memo would only churn it
            known.update({m: found.get(m) for m in wanted})
    return {m: found[m] if m in found else known.get(m) for m in member_ids}  # type: ignore[misc]


def _held_level(session: Session, member_id: int, p: TierProgramme) -> str:
    held = _held(session, [member_id])[member_id]
    return held[0] if held else p.levels[0].code


def level_of(session: Session, *, member_id: int) -> policy.Level:
    """The member's level now (the base level for members never evaluated)."""
    p = programme_in_force(session)
    return p.level(_held_level(session, member_id, p))


def progress_of(
    session: Session, *, member_id: int, now: datetime
) -> tuple[policy.Level, policy.Level | None, Decimal | None]:
    """The member's level, the next one and what is still missing to reach it."""
    p = programme_in_force(session)
    code = _held_level(session, member_id, p)
    nxt, missing = policy.progress(p, code, standing_of(session, member_id=member_id, p=p, now=now))
    return p.level(code), nxt, missing


def outlook_of(
    session: Session, *, member_id: int, total: Decimal, points: int, now: datetime
) -> policy.Outlook:
    """What a sale of `total` earning `points` now would do for the member's level."""
    p = programme_in_force(session)
    s = standing_of(session, member_id=member_id, p=p, now=now)
    return policy.outlook(p, _held_level(session, member_id, p), s, total=total, points=points)


def multiplier_of(session: Session, *, member_id: int) -> Decimal:
    """The points multiplier of the member's level now (an order earns at the level it met)."""
    p = programme_in_force(session)
    return p.level(_held_level(session, member_id, p)).benefits.points_multiplier


def evaluate_in(
    session: Session, *, member_id: int, now: datetime, top_share: Decimal | None = None
) -> policy.Decision:
    """Place the member (in the caller's transaction): up at once, down at review + grace."""
    shares = None if top_share is None else {member_id: top_share}
    return evaluate_many(session, member_ids=[member_id], now=now, top_shares=shares)[member_id]


def evaluate_many(
    session: Session,
    *,
    member_ids: Sequence[int],
    now: datetime,
    top_shares: Mapping[int, Decimal] | None = None,
) -> dict[int, policy.Decision]:
    """evaluate_in for many members (after a batch of merges, the periodic review), their
    standings read at once; `top_shares`: each member's rank from the top (none: unranked).
    Read and written in Core, a statement per kind of write; the rows are kept for the rest
    of the transaction (a sale reads its member's level again)."""
    p = programme_in_force(session)
    standings = standings_of(session, member_ids=member_ids, p=p, now=now)
    if top_shares is not None:
        standings = {
            m: Standing(s.spend, s.points, s.orders, top_shares.get(m), s.largest)
            for m, s in standings.items()
        }
    placed = _place_many(session, p, standings, now)
    changes = [pl.fact for pl in placed.values() if pl.fact is not None]
    if changes:
        outbox.publish_many(session, changes, now=now)
    session.flush()
    return {mid: pl.decision for mid, pl in placed.items()}


@dataclass(frozen=True)
class _Placed:
    """Where one evaluation leaves a member's tier row, and what it records."""

    decision: policy.Decision
    row: dict[str, Any]  # the row's values after
    write: bool  # the row is new or changes
    history: dict[str, Any] | None  # the TierChange, when the level changed
    fact: tuple[str, str, dict[str, Any]] | None  # its TierChanged for the outbox


def _placed(
    p: TierProgramme,
    member_id: int,
    s: Standing,
    held: tuple[str, datetime, datetime] | None,
    now: datetime,
) -> _Placed:
    """Place one member held at (level, since, review_at), or never placed (None): pure."""
    current, since, review_at = held if held else (p.levels[0].code, now, None)
    decision = policy.decide(
        p, current=current, since=since, review_at=review_at, standing=s, now=now
    )
    row = {"member_id": member_id, "level": current, "since": since,
           "review_at": decision.review_at, "updated_at": now}  # fmt: skip
    if not decision.changed:
        return _Placed(decision, row, held is None or review_at != decision.review_at, None, None)
    row.update(level=decision.level, since=now)
    history = {
        "member_id": member_id, "from_level": current, "to_level": decision.level,
        "reason": decision.reason, "created_at": now,
        "standing": {"spend": str(s.spend), "points": s.points, "orders": s.orders,
                     "top_share": None if s.top_share is None else str(s.top_share),
                     "largest_order": str(s.largest)},
    }  # fmt: skip
    fact = (
        "TierChanged", fact_key(member_id, now),
        {"member_id": member_id, "from": current, "to": decision.level,
         "reason": decision.reason},
    )  # fmt: skip
    return _Placed(decision, row, True, history, fact)


def _place_many(
    session: Session, p: TierProgramme, standings: dict[int, Standing], now: datetime
) -> dict[int, _Placed]:
    """Place members in Core: the ORM built and flushed an object per row and change."""
    session.flush()  # what the ORM holds is in the rows read below
    conn = session.connection()
    ids = sorted(standings)
    held = {mid: row for mid, row in _held(session, ids).items() if row is not None}
    placed = {mid: _placed(p, mid, standings[mid], held.get(mid), now) for mid in ids}
    new = [pl.row for mid, pl in placed.items() if mid not in held]
    changed = [
        {f"b_{k}": v for k, v in pl.row.items()}
        for mid, pl in placed.items()
        if mid in held and pl.write
    ]
    history = [pl.history for pl in placed.values() if pl.history is not None]
    if new:
        conn.execute(_INSERT_TIER, new)
    if changed:
        conn.execute(_UPDATE_TIER, changed)
    if history:
        conn.execute(_INSERT_CHANGE, history)
    known = memo(session, "tier_rows")
    if len(ids) <= LIMIT:
        known.update({m: (pl.row["level"], pl.row["since"], pl.row["review_at"])
                      for m, pl in placed.items()})  # fmt: skip
    else:
        forget(session, "tier_rows")
    # rows the session loaded earlier in the transaction are read again on their next use
    for obj in list(session.identity_map.values()):
        if isinstance(obj, MemberTier) and obj.member_id in placed:
            session.expire(obj)
    return placed


_CHANGES: sa.Table = TierChange.__table__  # type: ignore[assignment]
_INSERT_TIER = sa.insert(_TIERS)
_INSERT_CHANGE = sa.insert(_CHANGES)
_UPDATE_TIER = (
    sa.update(_TIERS)
    .where(_TIERS.c.member_id == bindparam("b_member_id"))
    .values({c: bindparam(f"b_{c}") for c in ("level", "since", "review_at", "updated_at")})
)


def review(uow: UnitOfWork, *, batch: int = 1_000) -> int:
    """The periodic pass: rank everyone by window spend (for percentile levels) and place
    every member whose review date has come or who may rise by rank. Returns changes made."""
    with uow.read() as session:
        p = programme_in_force(session)
        now = clock.now()
        spends: dict[int, int] = {
            int(mid or 0): int(cents)
            for mid, cents in session.execute(
                select(
                    Order.member_id,
                    func.sum(
                        type_coerce(Order.total, BigInteger)
                        - type_coerce(Order.refunded_total, BigInteger)
                    ),
                )
                .where(
                    Order.member_id.is_not(None),
                    Order.status.in_(COUNTED_STATUSES),
                    Order.ordered_at >= window_start(p, now),
                    Order.ordered_at <= now,
                )
                .group_by(Order.member_id)
            )
        }
        due = set(session.scalars(select(MemberTier.member_id).where(MemberTier.review_at <= now)))
        active = set(session.scalars(select(Member.id).where(Member.status == "active")))
    ranked = _top_shares(spends, population=len(active))
    uses_rank = any(lv.metric == "percentile" for lv in p.levels)
    todo = sorted((due | (set(ranked) if uses_rank else set()) | set(spends)) & active)
    changes = 0
    for n in range(0, len(todo), batch):
        chunk = todo[n : n + batch]

        def run(session: Session, chunk: list[int] = chunk) -> int:
            now = clock.now()
            members.hold_members(session, chunk)
            placed = evaluate_many(session, member_ids=chunk, now=now, top_shares=ranked)
            return sum(d.changed for d in placed.values())

        changes += uow.run(run)
    return changes


def _top_shares(spends: dict[int, int], *, population: int) -> dict[int, Decimal]:
    """Each buyer's rank as a share of the population from the top: 0.01 = top 1 %."""
    if population <= 0:
        return {}
    order = sorted(spends.items(), key=lambda kv: (-kv[1], kv[0]))
    return {mid: Decimal(n + 1) / population for n, (mid, _) in enumerate(order)}


def member_tier(uow: UnitOfWork, *, member_id: int) -> MemberTierRead:
    with uow.read() as session:
        member = members.current_member(session, member_id)
        p = programme_in_force(session)
        now = clock.now()
        row = session.get(MemberTier, member.id)
        code = row.level if row else p.levels[0].code
        s = standing_of(session, member_id=member.id, p=p, now=now)
        nxt, missing = policy.progress(p, code, s)
        history = session.scalars(
            select(TierChange)
            .where(TierChange.member_id == member.id)
            .order_by(TierChange.created_at.desc(), TierChange.id.desc())
            .limit(50)
        )
        level = p.level(code)
        shipments = shipping.quota_of(
            session, member_id=member.id, allowed=level.benefits.monthly_free_shipping,
            zone=p.timezone, now=now,
        )  # fmt: skip
        return MemberTierRead(
            member_id=member.id, level=level.code, name=level.name, benefits=level.benefits,
            since=row.since if row else None, review_at=row.review_at if row else None,
            window_spend=s.spend, window_points=s.points, window_orders=s.orders,
            next_level=nxt.code if nxt else None, next_name=nxt.name if nxt else None,
            next_metric=nxt.metric if nxt else None,
            missing=missing, to_keep=policy.to_keep(p, code, _kept_by(session, p, row, s, now)),
            free_shipping_used=shipments.used,
            free_shipping_left=shipments.left,
            history=[ChangeRead.model_validate(c) for c in history],
        )  # fmt: skip


def _kept_by(
    session: Session, p: TierProgramme, row: MemberTier | None, s: Standing, now: datetime
) -> Standing:  # fmt: skip
    """What will still count at the level's review, as things stand: the window ending at the
    review, so far. Purchases that leave the window before then do not keep the level. Past
    the review (in grace), the window ending now. The base level is kept by anything."""
    if row is None or row.review_at is None or clock.as_utc(row.review_at) <= now:
        return s
    if p.rank(row.level) == 0:
        return s
    since = window_start(p, clock.as_utc(row.review_at))
    return standing_of(session, member_id=row.member_id, p=p, now=now, since=since)


@dataclass(frozen=True)
class Movements:
    base: str  # the programme's first level, where everyone without a change sits
    upgrades: int  # members moved up at least once in the period
    downgrades: int  # members moved down at least once in the period
    levels: dict[str, int]  # active members above the base level at `until`, by level


def movements(session: Session, *, since: datetime, until: datetime) -> Movements:
    """Tier changes of [since, until) and where active members stood at `until` (KPIs). Levels
    are ranked by the programme in force; one no longer in it counts as the base level."""
    p = programme_in_force(session)
    base = p.levels[0].code
    ranks = {lv.code: n for n, lv in enumerate(p.levels)}

    def rank(column: Any) -> Any:
        return case(ranks, value=column, else_=0)

    c = TierChange
    in_period = (c.created_at >= since) & (c.created_at < until)
    up, down = session.execute(
        select(
            func.count(func.distinct(case((rank(c.to_level) > rank(c.from_level), c.member_id)))),
            func.count(func.distinct(case((rank(c.to_level) < rank(c.from_level), c.member_id)))),
        ).where(in_period)
    ).one()
    latest = (
        select(func.max(c.id).label("id"))
        .where(c.created_at < until)
        .group_by(c.member_id)
        .subquery()
    )
    levels = {
        str(level): int(n)
        for level, n in session.execute(
            select(c.to_level, func.count())
            .join(latest, latest.c.id == c.id)
            .join(Member, Member.id == c.member_id)
            .where(Member.status == "active", Member.joined_at < until, rank(c.to_level) > 0)
            .group_by(c.to_level)
        )
    }
    return Movements(base=base, upgrades=int(up), downgrades=int(down), levels=levels)


def member_levels() -> Any:
    """(member_id, level): every placed member's level now (members never placed are at the
    programme's base level)."""
    return select(MemberTier.member_id, MemberTier.level)


def distribution(
    uow: UnitOfWork, *, buckets: int = 20, measure: Literal["spend", "single_order"] = "spend"
) -> Distribution:
    """Window spend across active members — or each one's largest order (`single_order`):
    quantiles, a histogram, and who sits where, so a merchant can see what a threshold would
    mean before setting it."""
    gather = func.sum if measure == "spend" else func.max
    with uow.read() as session:
        p = programme_in_force(session)
        now = clock.now()
        spends = [
            Decimal(int(c)) / 100
            for (c,) in session.execute(
                select(func.coalesce(gather(_NET), 0))
                .select_from(Member)
                .outerjoin(
                    Order,
                    (Order.member_id == Member.id)
                    & Order.status.in_(COUNTED_STATUSES)
                    & (Order.ordered_at >= window_start(p, now))
                    & (Order.ordered_at <= now),
                )
                .where(Member.status == "active")
                .group_by(Member.id)
            )
        ]
        levels: Counter[str] = Counter(
            {
                str(level): int(count)
                for level, count in session.execute(
                    select(MemberTier.level, func.count())
                    .join(Member, Member.id == MemberTier.member_id)
                    .where(Member.status == "active")
                    .group_by(MemberTier.level)
                )
            }
        )
    spends.sort()
    n = len(spends)
    base = p.levels[0].code
    levels[base] += n - sum(levels.values())
    quantiles = {
        q: spends[min(n - 1, int(Decimal(q) * n))] if n else Decimal(0)
        for q in ("0.5", "0.75", "0.9", "0.95", "0.99")
    }
    top = spends[-1] if n else Decimal(0)
    width = (top / buckets) if top > 0 else Decimal(1)
    counts = Counter(min(buckets - 1, int(s / width)) for s in spends)
    return Distribution(
        members=n,
        window_months=p.window_months,
        quantiles=quantiles,
        buckets=[
            SpendBucket(
                low=(width * b).quantize(Decimal("0.01")),
                high=(width * (b + 1)).quantize(Decimal("0.01")),
                members=counts.get(b, 0),
            )
            for b in range(buckets)
        ],
        levels=[
            LevelCount(
                code=lv.code,
                name=lv.name,
                members=levels.get(lv.code, 0),
                would_qualify=sum(1 for s in spends if s >= lv.threshold)
                if lv.metric == measure
                else None,
            )
            for lv in p.levels
        ],
    )


def erase(session: Session, *, member_ids: Sequence[int]) -> None:
    """What staff wrote when giving a level goes; the change itself stays."""
    session.execute(
        sa.update(TierChange)
        .where(TierChange.member_id.in_(list(member_ids)),
               TierChange.reason.like("granted until %"))
        .values(reason="granted by hand (reason erased)")
    )  # fmt: skip


def export_rows(session: Session, member_ids: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """Everything this area holds on these members (a data-subject export)."""
    return {
        "member_tiers": rows_of(session, MemberTier, MemberTier.member_id, member_ids),
        "tier_changes": rows_of(session, TierChange, TierChange.member_id, member_ids),
    }
