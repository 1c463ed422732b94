"""Identity resolution at write time: which member do these identifiers name; merge the members
one person turned out to be, and undo a merge exactly.

Identity knows members and every table carrying a member_id, but it moves rows only through each
area's `reassign_members` / `restore_rows` use cases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session

from omo.audit import service as audit
from omo.commerce import service as commerce
from omo.coupons import holders as coupon_holders
from omo.db import UnitOfWork
from omo.events import service as events
from omo.identity.models import MatchReview, Merge, ResolutionRun
from omo.identity.schemas import IdentityKpis, MergeRead, ResolutionSummary
from omo.members import service as members
from omo.members.identifiers import Identifier
from omo.members.models import Member
from omo.messaging import service as messaging
from omo.points import service as points
from omo.referrals import service as referrals
from omo.shared import clock
from omo.shared.errors import Conflict, NotFound, ValidationFailed
from omo.shared.rows import rows_of
from omo.tasks import service as tasks
from omo.tiers import service as tiers

# Each area that carries member_id, with its reassign/restore pair. A new area that stores
# member_id adds itself here, and the merge/undo property test covers it.
AREAS = {
    "members.member_identifiers": (members.reassign_members, members.restore_rows),
    "commerce.orders": (commerce.reassign_members, commerce.restore_rows),
    "events.events": (events.reassign_members, events.restore_rows),
    "points.points_entries": (points.reassign_members, points.restore_rows),
    "coupons.coupons": (coupon_holders.reassign_coupons, coupon_holders.restore_coupons),
    "members.member_tags": (members.reassign_tags, members.restore_tags),
    "messaging.messages": (messaging.reassign_members, messaging.restore_rows),
    "tasks.staff_tasks": (tasks.reassign_members, tasks.restore_rows),
    "coupons.coupon_redemptions": (
        coupon_holders.reassign_redemptions,
        coupon_holders.restore_redemptions,
    ),
}


@dataclass(frozen=True)
class MergeOrder:
    """One merge of a batch: fold `absorbed_id` into `survivor_id`, with why."""

    survivor_id: int
    absorbed_id: int
    reason: str
    evidence: dict[str, Any]


def resolve(
    session: Session, *, identifiers: Sequence[Identifier], actor: str | None, now: datetime
) -> int | None:
    """The one member these identifiers name, merging members that turn out to be one person."""
    named = members.members_named_by(session, identifiers)
    ids = sorted(set(named.values()))
    if not ids:
        return None
    survivor = ids[0]  # the oldest record survives, so long-lived ids stay stable
    for other in ids[1:]:
        shared = [
            {"kind": i.kind.value, "namespace": i.namespace, "value": _mask(i)}
            for i, mid in named.items()
            if mid in (survivor, other)
        ]
        merge_members(
            session,
            survivor_id=survivor,
            absorbed_id=other,
            reason="shared_identifier",
            evidence={"identifiers": shared},
            actor=actor,
            now=now,
        )
    return survivor


def link_guest_activity(
    session: Session, *, member_id: int, identifiers: Sequence[Identifier], now: datetime
) -> dict[str, int]:
    """Give guest orders and anonymous events carrying these identifiers to the member."""
    order_ids = commerce.guest_orders_with(session, identifiers)
    orders = commerce.attach_guest_orders(
        session, order_ids=order_ids, member_id=member_id, now=now
    )
    evs = events.attach_guest_events(session, identifiers=identifiers, member_id=member_id)
    return {"orders": orders, "events": evs}


def merge_members(
    session: Session,
    *,
    survivor_id: int,
    absorbed_id: int,
    reason: str,
    evidence: dict[str, Any],
    actor: str | None,
    now: datetime,
) -> Merge:
    """Fold `absorbed_id` into `survivor_id`: every row re-pointed, the audit says what moved."""
    order = MergeOrder(survivor_id, absorbed_id, reason, evidence)
    merge = session.get(Merge, merge_many(session, [order], actor=actor, now=now)[0])
    assert merge is not None  # written just now, in this transaction
    # one person now: a referral held on whether they are gets no bonus
    referrals.settle_held(session, member_ids=(survivor_id, absorbed_id), now=now,
                          open_review=open_between)  # fmt: skip
    return merge


def open_between(session: Session, a: int, b: int) -> int | None:
    """The review still open on whether these two members are one person, if any."""
    lo, hi = sorted((a, b))
    return session.scalar(
        select(MatchReview.id).where(
            MatchReview.member_id == lo, MatchReview.other_member_id == hi,
            MatchReview.status == "pending",
        )
    )  # fmt: skip


def merge_many(
    session: Session,
    orders: Sequence[MergeOrder],
    *,
    actor: str | None,
    now: datetime,
    locked: Mapping[int, members.MergedMember] | None = None,
    audit_ids: bool = True,
) -> list[int]:
    """Many merges in one go (a resolution run), set-based per area: the same rows moved and
    the same audit, one Merge per absorbed member, each undoable on its own; returns their
    ids. A member is absorbed at most once per batch and never survives and is absorbed in the
    same batch. `locked`: the members by id when the caller has already row-locked them in
    this transaction (members.lock_members or lock_member_rows), so they are not read twice.
    `audit_ids=False`: the Merge ids are not read back and [] is returned (reading them back
    made SQLite insert the audit row by row: 2.4 s of 17 for 32,374 merges)."""
    if any(o.survivor_id == o.absorbed_id for o in orders):
        raise ValidationFailed("a member cannot be merged with itself", field="other_member_id")
    absorbed_ids = [o.absorbed_id for o in orders]
    survivors = {o.survivor_id for o in orders}
    if len(set(absorbed_ids)) != len(absorbed_ids) or survivors & set(absorbed_ids):
        raise ValueError("a member is absorbed twice, or both survives and is absorbed")
    if locked is None:
        locked = {m.id: m for m in members.lock_members(session, [*survivors, *absorbed_ids])}
    for o in orders:
        for mid, field in ((o.survivor_id, "member_id"), (o.absorbed_id, "other_member_id")):
            if mid not in locked:
                raise NotFound(f"member {mid} does not exist", field=field)
            if locked[mid].status != "active":
                raise Conflict(
                    f"member {mid} was merged into {locked[mid].merged_into_id}; merge that one",
                    field=field,
                )
    mapping = {o.absorbed_id: o.survivor_id for o in orders}
    moved = {name: reassign(session, mapping) for name, (reassign, _r) in AREAS.items()}
    changes = members.absorb_profiles(
        session, [(locked[o.survivor_id], locked[o.absorbed_id]) for o in orders], now=now
    )
    commerce.rebuild_stats(session, now=now, member_ids=sorted(locked))
    # the combined spend may lift the survivor's tier at once
    tiers.evaluate_many(session, member_ids=sorted(survivors), now=now)
    # the audit rows in one executemany (the ORM's unit of work cost 0.1 ms per merge)
    table: Table = Merge.__table__  # type: ignore[assignment]
    rows = [
        {
            "survivor_id": o.survivor_id, "absorbed_id": o.absorbed_id, "reason": o.reason,
            "evidence": o.evidence,
            "moved": {name: ids.get(o.absorbed_id, []) for name, ids in moved.items()},
            "changes": change, "actor": actor, "created_at": now,
        }
        for o, change in zip(orders, changes, strict=True)
    ]  # fmt: skip
    if not audit_ids:
        session.connection().execute(insert(table), rows)
        return []
    written = session.connection().execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
    )
    return [int(merge_id) for (merge_id,) in written]


def undo_merge(session: Session, *, merge_id: int, actor: str | None, now: datetime) -> Merge:
    """Put back what a merge moved; later activity of the survivor stays with the survivor."""
    merge = session.get(Merge, merge_id)
    if merge is None:
        raise NotFound(f"merge {merge_id} does not exist", field="merge_id")
    if merge.undone_at is not None:
        raise Conflict(f"merge {merge_id} was already undone", field="merge_id")
    locked = {
        m.id: m for m in members.lock_members(session, [merge.survivor_id, merge.absorbed_id])
    }
    survivor, absorbed = locked[merge.survivor_id], locked[merge.absorbed_id]
    if survivor.status != "active":
        later = session.scalar(
            select(Merge.id).where(Merge.absorbed_id == survivor.id, Merge.undone_at.is_(None))
        )
        raise Conflict(
            f"member {survivor.id} was merged again later; undo merge {later} first",
            field="merge_id",
        )
    if absorbed.status != "merged" or absorbed.merged_into_id != survivor.id:
        raise Conflict(f"member {absorbed.id} is no longer merged by this merge", field="merge_id")
    for name, (_reassign, restore) in AREAS.items():
        restore(
            session,
            row_ids=merge.moved.get(name, []),
            from_id=survivor.id,
            to_id=absorbed.id,
        )
    members.release_profile(
        session, survivor=survivor, absorbed=absorbed, changes=merge.changes, now=now
    )
    commerce.recompute_stats(session, member_id=survivor.id, now=now)
    commerce.recompute_stats(session, member_id=absorbed.id, now=now)
    merge.undone_at, merge.undone_by = now, actor
    session.flush()
    # two people again: a referral refused because they were one waits (or pays) again
    referrals.reopen_after_split(session, member_ids=(survivor.id, absorbed.id),
                                 merge_id=merge.id, now=now, open_review=open_between)  # fmt: skip
    return merge


def _mask(identifier: Identifier) -> str:
    return mask(identifier.value)


def mask(value: str) -> str:
    """Keep PII out of the audit's evidence: enough to recognise, not to contact."""
    return value if len(value) <= 4 else f"{'*' * (len(value) - 4)}{value[-4:]}"


# --- use cases (each owns its transaction) ----------------------------------------------------


def merge_use_case(
    uow: UnitOfWork, *, survivor_id: int, absorbed_id: int, note: str | None, actor: str | None
) -> MergeRead:
    """Merge two members by hand (staff decided they are one person)."""

    def run(session: Session) -> MergeRead:
        merge = merge_members(
            session,
            survivor_id=survivor_id,
            absorbed_id=absorbed_id,
            reason="manual",
            evidence={"note": note} if note else {},
            actor=actor,
            now=clock.now(),
        )
        audit.record(
            session, actor=actor, action="member.merge", target=f"member:{survivor_id}",
            detail={"absorbed": absorbed_id, "merge": merge.id},
        )  # fmt: skip
        return MergeRead.model_validate(merge)

    return uow.run(run)


def undo_use_case(uow: UnitOfWork, *, merge_id: int, actor: str | None) -> MergeRead:
    """Undo a merge."""

    def run(session: Session) -> MergeRead:
        merge = undo_merge(session, merge_id=merge_id, actor=actor, now=clock.now())
        audit.record(
            session, actor=actor, action="member.unmerge", target=f"member:{merge.survivor_id}",
            detail={"absorbed": merge.absorbed_id, "merge": merge.id},
        )  # fmt: skip
        return MergeRead.model_validate(merge)

    return uow.run(run)


def get_merge(uow: UnitOfWork, *, merge_id: int) -> MergeRead:
    with uow.read() as session:
        merge = session.get(Merge, merge_id)
        if merge is None:
            raise NotFound(f"merge {merge_id} does not exist", field="merge_id")
        return MergeRead.model_validate(merge)


def identity_kpis(
    uow: UnitOfWork, *, since: datetime | None, until: datetime | None
) -> IdentityKpis:
    """Identification rate, duplicate-account rate and online/offline spend share."""
    with uow.read() as session:
        return identity_figures(session, since=since, until=until)


def identity_figures(
    session: Session, *, since: datetime | None, until: datetime | None
) -> IdentityKpis:
    """identity_kpis in the caller's transaction (the analytics KPIs read it with the rest)."""
    spend = commerce.spend_totals(session, since=since, until=until)
    active = session.scalar(select(func.count()).where(Member.status == "active")) or 0
    merged = session.scalar(select(func.count()).where(Member.status == "merged")) or 0
    # members whose (name, birth date) another active member shares: one GROUP BY, not a
    # self-join (which took seconds at a million members)
    shared = (
        select(func.count().label("n"))
        .where(
            Member.status == "active",
            Member.name.is_not(None),
            Member.birth_date.is_not(None),
        )
        .group_by(Member.name, Member.birth_date)
        .having(func.count() > 1)
        .subquery()
    )
    suspected = int(session.scalar(select(func.coalesce(func.sum(shared.c.n), 0))) or 0)
    resolution = _resolution_summary(session)
    total = spend["total"]

    def share(part: Any, whole: Any) -> float:
        return round(float(part / whole), 4) if whole else 0.0

    return IdentityKpis(
        period_from=since,
        period_to=until,
        orders=int(spend["orders"]),
        order_value=f"{total:.2f}",
        identification_rate=share(spend["identified"], total),
        identified_order_share=share(spend["identified_orders"], spend["orders"]),
        active_members=active,
        merged_members=merged,
        suspected_duplicates=suspected,
        duplicate_account_rate=share(suspected, active),
        online_spend_share=share(spend["online"], total),
        offline_spend_share=share(spend["offline"], total),
        resolution=resolution,
    )


def _resolution_summary(session: Session) -> ResolutionSummary | None:
    run = session.scalars(
        select(ResolutionRun)
        .where(ResolutionRun.status == "done")
        .order_by(ResolutionRun.id.desc())
        .limit(1)
    ).first()
    if run is None:
        return None
    pending = session.scalar(
        select(func.count()).select_from(MatchReview).where(MatchReview.status == "pending")
    )
    return ResolutionSummary(
        run_id=run.id,
        finished_at=run.finished_at,
        duplicate_rate_before=run.kpis.get("before", {}).get("duplicate_rate", 0.0),
        duplicate_rate_after=run.kpis.get("after", {}).get("duplicate_rate", 0.0),
        merges=run.merges,
        pending_reviews=int(pending or 0),
    )


def export_rows(session: Session, member_ids: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """Everything this area holds on these members (a data-subject export)."""
    return {
        "merges_in": rows_of(session, Merge, Merge.survivor_id, member_ids),
        "merges_away": rows_of(session, Merge, Merge.absorbed_id, member_ids),
    }


def erase(session: Session, *, member_ids: Sequence[int]) -> None:
    """Merges keep which rows moved (the ledgers' history) but not the profile values they
    recorded for an undo: an erased profile cannot come back."""
    ids = list(member_ids)
    session.execute(
        update(Merge)
        .where((Merge.survivor_id.in_(ids)) | (Merge.absorbed_id.in_(ids)))
        .values(changes={}, evidence={"erased": True})
    )
