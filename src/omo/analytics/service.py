"""Use cases over the refresh's results: runs, a member's scores, segments (built-in and saved
merchant rules) with counts and member lists, the at-risk list."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import BigInteger, Select, func, select, type_coerce
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from omo.analytics.models import AnalyticsRun, CohortMonth, MemberScore, SavedSegment
from omo.analytics.rfm import SEGMENTS
from omo.analytics.rules import FIELDS, RuleError, parse
from omo.analytics.schemas import (
    CohortMonthRead,
    CohortRead,
    RuleCount,
    RunRead,
    ScorePage,
    ScoreRead,
    SegmentRead,
)
from omo.db import UnitOfWork
from omo.members.models import Member
from omo.shared import clock
from omo.shared.errors import Conflict, NotFound, ValidationFailed
from omo.shared.rows import rows_of
from omo.transfer.formats import csv_lines

_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
LEFTOVER = {"others": "buyers no rule above matched", "prospect": "no purchase yet"}

# rule field -> member_scores column (money in NT$, as the rule language speaks it)
_COLUMNS: dict[str, Any] = {
    name: getattr(MemberScore, name) for name in FIELDS if name not in ("spend", "clv")
}
_COLUMNS["spend"] = type_coerce(MemberScore.spend, BigInteger) / 100.0
_COLUMNS["clv"] = type_coerce(MemberScore.clv, BigInteger) / 100.0
_COLUMNS["tags"] = MemberScore.tags  # for tag('…')


def list_runs(uow: UnitOfWork, *, limit: int) -> list[RunRead]:
    with uow.read() as session:
        runs = session.scalars(select(AnalyticsRun).order_by(AnalyticsRun.id.desc()).limit(limit))
        return [RunRead.model_validate(r) for r in runs]


def get_run(uow: UnitOfWork, run_id: int) -> RunRead:
    with uow.read() as session:
        run = session.get(AnalyticsRun, run_id)
        if run is None:
            raise NotFound(f"no analytics run {run_id}", field="run_id")
        return RunRead.model_validate(run)


def member_scores(uow: UnitOfWork, *, member_id: int) -> ScoreRead:
    """A member's figures, scores, segment and predictions from the last refresh."""
    with uow.read() as session:
        score = session.scalar(_scored().where(MemberScore.member_id == member_id))
        if score is None:
            raise NotFound(
                f"member {member_id} has no scores (unknown, merged, or not refreshed yet)",
                field="member_id",
            )
        return ScoreRead.model_validate(score)


def list_segments(uow: UnitOfWork) -> list[SegmentRead]:
    """Built-in segments with the rules of the last refresh, then the merchant's saved ones."""
    with uow.read() as session:
        grouped = _count(select(MemberScore.segment, func.count())).group_by(MemberScore.segment)
        counts: dict[str, int] = {name: n for name, n in session.execute(grouped)}
        rules = _builtin_rules(session)
        found = [
            SegmentRead(name=name, rule=rule, kind="builtin", members=counts.get(name, 0))
            for name, rule in rules.items()
        ]
        for saved in session.scalars(select(SavedSegment).order_by(SavedSegment.name)):
            condition = parse(saved.rule).to_sql(_COLUMNS)
            members = session.scalar(_count(select(func.count())).where(condition)) or 0
            found.append(
                SegmentRead(name=saved.name, rule=saved.rule, kind="saved", members=members)
            )
        return found


def segment_members(uow: UnitOfWork, *, name: str, limit: int, offset: int) -> ScorePage:
    """The members of a segment (built-in or saved), highest spend first."""
    with uow.read() as session:
        condition = _segment_condition(session, name)
        total = session.scalar(_count(select(func.count())).where(condition)) or 0
        rows = session.scalars(
            _scored()
            .where(condition)
            .order_by(MemberScore.spend.desc(), MemberScore.member_id)
            .limit(limit)
            .offset(offset)
        )
        return ScorePage(total=total, items=[ScoreRead.model_validate(r) for r in rows])


def export_segment(uow: UnitOfWork, *, name: str) -> Iterator[ScoreRead]:
    """Every member of a segment, for an export file; read in one transaction."""
    with uow.read() as session:
        condition = _segment_condition(session, name)
        query = _scored().where(condition).order_by(MemberScore.member_id)
        for score in session.scalars(query.execution_options(yield_per=2000)):
            yield ScoreRead.model_validate(score)


EXPORT_COLUMNS = tuple(ScoreRead.model_fields)


def segment_csv(uow: UnitOfWork, *, name: str) -> Iterator[str]:
    """Every member of a segment as CSV lines: ids and figures, no personal data. An unknown
    segment is a 404 here, before any line is streamed."""
    segment_members(uow, name=name, limit=1, offset=0)
    rows = (
        [" ".join(v) if isinstance(v, list) else v for v in (getattr(s, c) for c in EXPORT_COLUMNS)]
        for s in export_segment(uow, name=name)
    )
    return csv_lines(EXPORT_COLUMNS, rows)


def count_rule(uow: UnitOfWork, *, rule: str) -> RuleCount:
    """How many members a rule selects now: the segment builder's live count."""
    parsed = _parse(rule)
    with uow.read() as session:
        everyone = session.scalar(_count(select(func.count()))) or 0
        members = session.scalar(
            _count(select(func.count())).where(parsed.to_sql(_COLUMNS))
        ) or 0  # fmt: skip
    return RuleCount(
        rule=parsed.text,
        fields=sorted(parsed.fields),
        members=members,
        share=round(members / everyone, 4) if everyone else 0.0,
    )


def save_segment(uow: UnitOfWork, *, name: str, rule: str, actor: str) -> SegmentRead:
    """Save a merchant's rule as a named dynamic segment."""
    parsed = _parse(rule)
    if name in _builtin_names():
        raise Conflict(f"{name!r} is a built-in segment; choose another name", field="name")

    def run(session: Session) -> SegmentRead:
        if session.scalar(select(SavedSegment.id).where(SavedSegment.name == name)):
            raise Conflict(f"a segment named {name!r} exists", field="name")
        session.add(
            SavedSegment(name=name, rule=parsed.text, created_by=actor, created_at=clock.now())
        )
        session.flush()
        members = session.scalar(_count(select(func.count())).where(parsed.to_sql(_COLUMNS)))
        return SegmentRead(name=name, rule=parsed.text, kind="saved", members=members or 0)

    try:
        return uow.run(run, attempts=1)
    except IntegrityError:  # a concurrent save of the same name won
        raise Conflict(f"a segment named {name!r} exists", field="name") from None


def delete_segment(uow: UnitOfWork, *, name: str) -> None:
    def run(session: Session) -> None:
        saved = session.scalar(select(SavedSegment).where(SavedSegment.name == name))
        if saved is None:
            raise NotFound(f"no saved segment {name!r}", field="name")
        session.delete(saved)

    uow.run(run)


def rfm_grid(uow: UnitOfWork) -> dict[tuple[int, int], int]:
    """Members per (R, F) score of the last refresh: the RFM grid."""
    with uow.read() as session:
        rows = session.execute(
            _count(select(MemberScore.r, MemberScore.f, func.count()))
            .where(MemberScore.r.is_not(None), MemberScore.f.is_not(None))
            .group_by(MemberScore.r, MemberScore.f)
        )
        return {(int(r), int(f)): int(n) for r, f, n in rows}


def at_risk(uow: UnitOfWork, *, limit: int, offset: int) -> ScorePage:
    """Valuable members who are probably slipping away (P(alive) < 0.5, top 30 % by spend)."""
    with uow.read() as session:
        total = session.scalar(_count(select(func.count())).where(MemberScore.at_risk)) or 0
        rows = session.scalars(
            _scored()
            .where(MemberScore.at_risk)
            .order_by(MemberScore.spend.desc(), MemberScore.member_id)
            .limit(limit)
            .offset(offset)
        )
        return ScorePage(total=total, items=[ScoreRead.model_validate(r) for r in rows])


def _scored() -> Select[MemberScore]:
    """Scores of members still active (a merge leaves the absorbed member's row until the next
    refresh)."""
    return (
        select(MemberScore)
        .join(Member, Member.id == MemberScore.member_id)
        .where(Member.status == "active")
    )


def _count(query: Any) -> Any:
    return (
        query.select_from(MemberScore)
        .join(Member, Member.id == MemberScore.member_id)
        .where(Member.status == "active")
    )


def segment_condition(session: Session, name: str) -> Any:
    """Members of a segment (built-in or saved) as a condition over member_scores."""
    return _segment_condition(session, name)


def rule_condition(rule: str) -> Any:
    """A rule in the segment language as a condition over member_scores (422 if unreadable)."""
    return _parse(rule).to_sql(_COLUMNS)


def _segment_condition(session: Session, name: str) -> Any:
    if name in _builtin_rules(session):
        return MemberScore.segment == name
    saved = session.scalar(select(SavedSegment).where(SavedSegment.name == name))
    if saved is None:
        raise NotFound(f"no segment {name!r}", field="name")
    return parse(saved.rule).to_sql(_COLUMNS)


def _builtin_rules(session: Session) -> dict[str, str]:
    """The rules the last finished refresh used (a merchant may have tuned them), else the
    defaults; then what is left over."""
    policy = session.scalar(
        select(AnalyticsRun.policy)
        .where(AnalyticsRun.status == "done")
        .order_by(AnalyticsRun.id.desc())
        .limit(1)
    )
    segments = (policy or {}).get("segments") or [
        {"name": s.name, "rule": s.rule} for s in SEGMENTS
    ]
    return {s["name"]: s["rule"] for s in segments} | LEFTOVER


def _builtin_names() -> set[str]:
    return {s.name for s in SEGMENTS} | set(LEFTOVER)


def _parse(rule: str) -> Any:
    try:
        return parse(rule)
    except RuleError as exc:
        raise ValidationFailed(str(exc), field="rule", code="invalid_rule") from None


def cohorts(uow: UnitOfWork, *, first: str | None) -> list[CohortRead]:
    """Monthly acquisition cohorts of the last refresh and their retention, month by month;
    from cohort `first` (YYYY-MM) on when given."""
    if first is not None and not _MONTH.fullmatch(first):
        raise ValidationFailed("first must be a month, YYYY-MM", field="query.first")
    query = select(CohortMonth).order_by(CohortMonth.cohort, CohortMonth.months_since)
    if first is not None:
        query = query.where(CohortMonth.cohort >= first)
    found: dict[str, CohortRead] = {}
    with uow.read() as session:
        for row in session.scalars(query):
            cohort = found.setdefault(
                row.cohort, CohortRead(cohort=row.cohort, size=row.size, months=[])
            )
            rate = round(row.active / row.size, 4) if row.size else 0.0
            cohort.months.append(
                CohortMonthRead(months_since=row.months_since, active=row.active, rate=rate)
            )
    return list(found.values())


def export_rows(session: Session, member_ids: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """Everything this area holds on these members (a data-subject export)."""
    return {"member_scores": rows_of(session, MemberScore, MemberScore.member_id, member_ids)}
