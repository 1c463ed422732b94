"""The review queue: pairs the model was unsure about, for a person to accept (merge) or reject
(never proposed again)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omo.db import UnitOfWork
from omo.identity.models import MatchReview
from omo.identity.schemas import MemberBrief, ReviewRead
from omo.identity.service import mask, merge_members, open_between
from omo.members import service as members
from omo.members.models import Member, MemberIdentifier
from omo.referrals import service as referrals
from omo.shared import clock
from omo.shared.errors import Conflict, NotFound, ValidationFailed

STATUSES = ("pending", "accepted", "rejected", "obsolete")


def list_reviews(
    uow: UnitOfWork, *, status: str, limit: int, offset: int
) -> tuple[int, list[ReviewRead]]:
    """Reviews by status, most probable first, with both members as they are now."""
    if status not in STATUSES:
        raise ValidationFailed(
            f"unknown status {status!r}; one of {', '.join(STATUSES)}", field="query.status"
        )
    with uow.read() as session:
        total = session.scalar(
            select(func.count()).select_from(MatchReview).where(MatchReview.status == status)
        )
        rows = session.scalars(
            select(MatchReview)
            .where(MatchReview.status == status)
            .order_by(MatchReview.match_probability.desc(), MatchReview.id)
            .limit(limit)
            .offset(offset)
        )
        return int(total or 0), _read_all(session, list(rows))


def get_review(uow: UnitOfWork, review_id: int) -> ReviewRead:
    with uow.read() as session:
        return _read(session, _get(session, review_id))


def accept(uow: UnitOfWork, *, review_id: int, note: str | None, actor: str) -> ReviewRead:
    """The two members are one person: merge them (into the older), audited and undoable."""

    def run(session: Session) -> ReviewRead:
        review = _lock(session, review_id)
        _must_be_pending(review)
        now = clock.now()
        a = members.active_root(session, review.member_id)
        b = members.active_root(session, review.other_member_id)
        if a == b:
            review.status = "obsolete"  # merged some other way since the run
        else:
            merge = merge_members(
                session, survivor_id=min(a, b), absorbed_id=max(a, b), reason="review",
                evidence={"review_id": review.id, "run_id": review.run_id,
                          "match_probability": review.match_probability,
                          "weights": review.weights, **({"note": note} if note else {})},
                actor=actor, now=now,
            )  # fmt: skip
            review.status, review.merge_id = "accepted", merge.id
        review.decided_at, review.decided_by, review.updated_at = now, actor, now
        session.flush()
        # one person: a referral held on the review gets no bonus
        referrals.settle_held(session, member_ids=(a, b), now=now, open_review=open_between)
        return _read(session, review)

    return uow.run(run)


def reject(uow: UnitOfWork, *, review_id: int, actor: str) -> ReviewRead:
    """Two different people: remembered, so later runs neither queue nor auto-merge the pair."""

    def run(session: Session) -> ReviewRead:
        review = _lock(session, review_id)
        _must_be_pending(review)
        now = clock.now()
        review.status = "rejected"
        review.decided_at, review.decided_by, review.updated_at = now, actor, now
        session.flush()
        referrals.settle_held(  # two people: a referral held on the review goes ahead
            session, member_ids=(review.member_id, review.other_member_id), now=now,
            open_review=open_between,
        )  # fmt: skip
        return _read(session, review)

    return uow.run(run)


def _get(session: Session, review_id: int) -> MatchReview:
    review = session.get(MatchReview, review_id)
    if review is None:
        raise NotFound(f"review {review_id} does not exist", field="review_id")
    return review


def _lock(session: Session, review_id: int) -> MatchReview:
    stmt = select(MatchReview).where(MatchReview.id == review_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    review = session.scalars(stmt).first()
    if review is None:
        raise NotFound(f"review {review_id} does not exist", field="review_id")
    return review


def _must_be_pending(review: MatchReview) -> None:
    if review.status != "pending":
        raise Conflict(
            f"review {review.id} is {review.status}, not pending; decided by {review.decided_by}"
            if review.decided_by
            else f"review {review.id} is {review.status}, not pending",
            field="review_id",
        )


def _read(session: Session, review: MatchReview) -> ReviewRead:
    return _read_all(session, [review])[0]


def _read_all(session: Session, reviews: list[MatchReview]) -> list[ReviewRead]:
    """Reviews with both members as they are now (members and identifiers read at once)."""
    held = members.members_with_identifiers(
        session, [m for r in reviews for m in (r.member_id, r.other_member_id)]
    )
    out = []
    for review in reviews:
        read = ReviewRead.model_validate(review)
        read.member = _brief(*held[review.member_id])
        read.other_member = _brief(*held[review.other_member_id])
        out.append(read)
    return out


def _brief(m: Member, identifiers: list[MemberIdentifier]) -> MemberBrief:
    ids = []
    for i in identifiers:
        space = f":{i.namespace}" if i.namespace else ""
        ids.append(f"{i.kind}{space}:{mask(i.value)}")
    return MemberBrief(
        id=m.id, status=m.status, name=m.name, gender=m.gender, birth_date=m.birth_date,
        city=m.city, district=m.district, address_line=m.address_line,
        join_channel=m.join_channel, joined_at=m.joined_at, identifiers=ids,
    )  # fmt: skip
