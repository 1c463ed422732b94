"""Use cases of the members area. Functions take the caller's session: the orchestrator that
calls them (ingest, identity) owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Row,
    String,
    Table,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from omo.members.identifiers import Identifier
from omo.members.models import Consent, ConsentChange, Member, MemberIdentifier, MemberTag
from omo.members.schemas import ProfileFields
from omo.shared.errors import NotFound
from omo.shared.prepared import Prepared
from omo.shared.reassign import reassign_rows
from omo.shared.reassign import restore_rows as restore_rows_of
from omo.shared.rows import rows_of
from omo.shared.sqlmatch import keys_in

PROFILE_FIELDS = tuple(ProfileFields.model_fields)
# A member as a merge reads it: the ORM object, or a row of lock_member_rows
MergedMember = Member | Row[Any]


def members_named_by(session: Session, identifiers: Iterable[Identifier]) -> dict[Identifier, int]:
    """Which member each known identifier names (identifiers always point at active members)."""
    keys = [(i.kind.value, i.namespace, i.value) for i in identifiers]
    if not keys:
        return {}
    rows = session.execute(
        select(
            MemberIdentifier.kind,
            MemberIdentifier.namespace,
            MemberIdentifier.value,
            MemberIdentifier.member_id,
        ).where(
            keys_in(
                (MemberIdentifier.kind, MemberIdentifier.namespace, MemberIdentifier.value), keys
            )
        )
    ).all()
    found = {(r.kind, r.namespace, r.value): r.member_id for r in rows}
    return {
        i: found[(i.kind.value, i.namespace, i.value)]
        for i in identifiers
        if (i.kind.value, i.namespace, i.value) in found
    }


def create_member(
    session: Session,
    *,
    profile: dict[str, Any],
    joined_at: datetime,
    join_channel: str | None,
    join_store_id: int | None,
    now: datetime,
) -> Member:
    member = Member(
        status="active",
        joined_at=joined_at,
        join_channel=join_channel,
        join_store_id=join_store_id,
        created_at=now,
        updated_at=now,
        **{k: v for k, v in profile.items() if k in PROFILE_FIELDS},
    )
    session.add(member)
    session.flush()
    return member


def update_profile(
    session: Session, member: Member, *, profile: dict[str, Any], now: datetime
) -> None:
    """Overwrite the fields that were given; fields not given keep their value."""
    changed = False
    for field, value in profile.items():
        if field in PROFILE_FIELDS and value is not None and getattr(member, field) != value:
            setattr(member, field, value)
            changed = True
    if changed:
        member.updated_at = now


def add_identifiers(
    session: Session,
    *,
    member_id: int,
    identifiers: Iterable[Identifier],
    source_channel: str | None,
    now: datetime,
) -> list[Identifier]:
    """Attach identifiers no member holds yet; returns those that were new."""
    idents = list(dict.fromkeys(identifiers))
    known = members_named_by(session, idents)
    new = [i for i in idents if i not in known]
    for i in new:
        session.add(
            MemberIdentifier(
                member_id=member_id,
                kind=i.kind.value,
                namespace=i.namespace,
                value=i.value,
                source_channel=source_channel,
                created_at=now,
            )
        )
    session.flush()
    return new


def set_consents(
    session: Session,
    *,
    member_id: int,
    consents: dict[str, bool],
    source: str | None,
    now: datetime,
) -> None:
    """The member's decisions per channel; each change is also logged with its source."""
    existing = {
        c.channel: c for c in session.scalars(select(Consent).where(Consent.member_id == member_id))
    }
    for channel, granted in consents.items():
        row = existing.get(channel)
        if row is None:
            session.add(
                Consent(
                    member_id=member_id, channel=channel, granted=granted, source=source,
                    updated_at=now,
                )
            )  # fmt: skip
        elif row.granted != granted:
            row.granted, row.source, row.updated_at = granted, source, now
        else:
            continue
        session.add(
            ConsentChange(
                member_id=member_id, channel=channel, granted=granted, source=source,
                created_at=now,
            )
        )  # fmt: skip
    session.flush()


def named_like(session: Session, text: str, *, limit: int) -> list[Member]:
    """Active members whose name holds `text` (letters in any case), newest first."""
    return list(
        session.scalars(
            select(Member)
            .where(Member.status == "active", Member.name.icontains(text, autoescape=True))
            .order_by(Member.id.desc())
            .limit(limit)
        )
    )


def get_member(session: Session, member_id: int) -> Member:
    member = session.get(Member, member_id)
    if member is None:
        raise NotFound(
            f"member {member_id} does not exist", field="member_id", ctx={"member_id": member_id}
        )
    return member


def current_member(session: Session, member_id: int) -> Member:
    """The member, or the member it was merged into (following a chain of merges)."""
    member = get_member(session, member_id)
    seen = {member.id}
    while member.status == "merged" and member.merged_into_id is not None:
        member = get_member(session, member.merged_into_id)
        if member.id in seen:  # pragma: no cover - a cycle would be a bug in merge
            raise RuntimeError(f"merge cycle at member {member.id}")
        seen.add(member.id)
    return member


def current_member_id_ahead(session: Session, member_id: int, *, hold: bool = False) -> None:
    """current_member_id's first read, read ahead (Prepared.ahead)."""
    _status_of(session, hold).ahead(session, {"id": member_id})


def _status_of(session: Session, hold: bool) -> Prepared:
    return (
        _STATUS_OF_HELD if hold and session.get_bind().dialect.name == "postgresql" else _STATUS_OF
    )


def current_member_id(session: Session, member_id: int, *, hold: bool = False) -> int:
    """current_member's id, read in Core without loading the member: a sale only needs to know
    who it is for (a merged member's sales go to the member it was merged into).

    With `hold`, the member is also held as hold_members holds it, in the same read: on
    PostgreSQL a sale saves the round trip of a second statement."""
    seen: set[int] = set()
    at = member_id
    statement = _status_of(session, hold)
    while True:
        # a member the ORM holds unsent (enrolled or merged in this transaction) counts
        row = statement.first(session, {"id": at})
        if row is None:
            raise NotFound(f"member {at} does not exist", field="member_id", ctx={"member_id": at})
        seen.add(at)
        status, merged_into = row
        if status != "merged" or merged_into is None:
            if statement is _STATUS_OF_HELD:
                _held(session).add(at)
            return at
        if merged_into in seen:  # pragma: no cover - a cycle would be a bug in merge
            raise RuntimeError(f"merge cycle at member {merged_into}")
        at = merged_into


def birth_date(session: Session, member_id: int) -> date | None:
    """The member's birth date, if they gave it (a programme's birthday month)."""
    return session.scalar(select(Member.birth_date).where(Member.id == member_id))


_MEMBERS = Member.__table__.c
_STATUS_OF = Prepared(
    select(_MEMBERS.status, _MEMBERS.merged_into_id).where(_MEMBERS.id == bindparam("id"))
)
_STATUS_OF_HELD = Prepared(
    select(_MEMBERS.status, _MEMBERS.merged_into_id)
    .where(_MEMBERS.id == bindparam("id"))
    .with_for_update(key_share=True)
)


def lock_members(session: Session, member_ids: Sequence[int]) -> list[Member]:
    """Load and row-lock members in id order, so that two merges never deadlock.

    FOR NO KEY UPDATE, not FOR UPDATE: inserting an order or a ledger row that references the
    member takes a KEY SHARE lock on it, and FOR UPDATE would wait on (and deadlock with) those.
    """
    stmt = select(Member).where(Member.id.in_(sorted(set(member_ids)))).order_by(Member.id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(key_share=True)
    return list(session.scalars(stmt))


def hold_members(session: Session, member_ids: Sequence[int]) -> None:
    """lock_members for a use case that does not need the members loaded (a till's points).
    On SQLite the write transaction already holds the database's one write lock (BEGIN
    IMMEDIATE), so there is nothing to take; on PostgreSQL only the ids are read."""
    if session.get_bind().dialect.name != "postgresql":
        return
    held = _held(session)
    ids = sorted(set(member_ids) - held)
    if len(ids) == 1:  # a sale: prepared, built once
        _HOLD_ONE.rows(session, {"id": ids[0]})
    elif ids:
        session.execute(
            select(Member.id)
            .where(Member.id.in_(ids))
            .order_by(Member.id)
            .with_for_update(key_share=True)
        ).all()
    held.update(ids)


def _held(session: Session) -> set[int]:
    """The members locked in the session's transaction so far (a lock lasts its transaction:
    each member is locked once in it, though a sale earns and spends)."""
    transaction = session.get_transaction()
    kept = session.info.get("omo.held_members")
    if kept is None or kept[0] is not transaction:
        kept = session.info["omo.held_members"] = (transaction, set())
    held: set[int] = kept[1]
    return held


_HOLD_ONE = Prepared(
    select(Member.__table__.c.id)
    .where(Member.__table__.c.id == bindparam("id"))
    .with_for_update(key_share=True)
)


def lock_member_rows(session: Session, member_ids: Sequence[int]) -> list[Row[Any]]:
    """lock_members as Core rows of what a merge reads (id, status, merged_into_id and the
    profile it absorbs), for batches of merges: no ORM object per member."""
    m = Member.__table__.c
    stmt = (
        select(m.id, m.status, m.merged_into_id, *[m[f] for f in _ABSORBED_FIELDS])
        .where(m.id.in_(sorted(set(member_ids))))
        .order_by(m.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(key_share=True)
    return list(session.execute(stmt))


def identifiers_of(session: Session, member_id: int) -> list[MemberIdentifier]:
    return list(
        session.scalars(
            select(MemberIdentifier)
            .where(MemberIdentifier.member_id == member_id)
            .order_by(MemberIdentifier.id)
        )
    )


def members_with_identifiers(
    session: Session, member_ids: Sequence[int]
) -> dict[int, tuple[Member, list[MemberIdentifier]]]:
    """Members and their identifiers, for a page of them, in two queries."""
    ids = sorted(set(member_ids))
    found: dict[int, tuple[Member, list[MemberIdentifier]]] = {
        m.id: (m, []) for m in session.scalars(select(Member).where(Member.id.in_(ids)))
    }
    for i in session.scalars(
        select(MemberIdentifier)
        .where(MemberIdentifier.member_id.in_(ids))
        .order_by(MemberIdentifier.id)
    ):
        found[i.member_id][1].append(i)
    return found


def consents_of(session: Session, member_id: int) -> list[Consent]:
    return list(
        session.scalars(
            select(Consent).where(Consent.member_id == member_id).order_by(Consent.channel)
        )
    )


def merged_ids_of(session: Session, member_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Member.id).where(Member.merged_into_id == member_id).order_by(Member.id)
        )
    )


def merge_tree(session: Session, member_ids: Sequence[int]) -> list[int]:
    """These members and every member merged into them, at any depth (sorted)."""
    seen, todo = set(member_ids), list(member_ids)
    while todo:
        for absorbed in merged_ids_of(session, todo.pop()):
            if absorbed not in seen:
                seen.add(absorbed)
                todo.append(absorbed)
    return sorted(seen)


def matching_profiles(session: Session, ids: tuple[int, int] | None = None) -> Iterator[Row[Any]]:
    """Every active member's profile and lowest phone, for batch identity resolution (streamed
    through the Core connection: a million members never sit in the session). The birth date
    comes as its ISO text. `ids` (after, up to): only the members with after < id <= up to.

    The status is tested here, not in SQL: one scan in id order (3.7 s at 1M), and nearly every
    member is active. With `status = 'active'` in the query, SQLite read the members through
    the index then led by the status and sorted a million rows by id (7.2 s)."""
    # a correlated look-up per member through the member_id index: SQLite ran the grouped
    # subquery into a temporary B-tree and joined it by an automatic index (2.5× slower)
    phone = (
        select(func.min(MemberIdentifier.value))
        .where(MemberIdentifier.member_id == Member.id, MemberIdentifier.kind == "phone")
        .scalar_subquery()
        .label("phone")
    )
    m = Member
    stmt = select(
        m.id,
        m.name,
        m.gender,
        cast(m.birth_date, String).label("birth_date"),
        m.city,
        m.district,
        m.address_line,
        m.postal_code,
        m.join_store_id,
        phone,
        m.status,
    ).order_by(m.id)
    if ids is not None:
        stmt = stmt.where(m.id > ids[0], m.id <= ids[1])
    for row in session.connection().execute(stmt.execution_options(yield_per=20_000)):
        if row.status == "active":
            yield row


def id_span(session: Session) -> tuple[int, int] | None:
    """(lowest, highest) member id, merged members included; None when there is none."""
    low, high = session.execute(select(func.min(Member.id), func.max(Member.id))).one()
    return None if low is None else (int(low), int(high))


def active_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).where(Member.status == "active")) or 0)


def enrolment_counts(session: Session, *, since: datetime, until: datetime) -> tuple[int, int]:
    """(active members who had joined by `until`, of them those who joined in [since, until))."""
    joined = Member.joined_at >= since
    total, new = session.execute(
        select(func.count(), func.coalesce(func.sum(case((joined, 1), else_=0)), 0)).where(
            Member.status == "active", Member.joined_at < until
        )
    ).one()
    return int(total), int(new)


def all_ids() -> Any:
    """(member_id) of every member, merged ones included (a merge moves their orders, events
    and points to the survivor, so they own none): read from an index, not the wide rows."""
    return select(Member.id.label("member_id"))


def active_root(session: Session, member_id: int) -> int:
    """The id of the active member `member_id` is now part of (itself unless merged)."""
    return current_member(session, member_id).id


# --- merge support: identity calls these, never the tables ------------------------------------


def reassign_members(session: Session, mapping: Mapping[int, int]) -> dict[int, list[int]]:
    """Re-point the identifiers of each key of `mapping` to its value; moved row ids by member."""
    return reassign_rows(
        session, id_col=MemberIdentifier.id, member_col=MemberIdentifier.member_id, mapping=mapping
    )


def restore_rows(session: Session, *, row_ids: Sequence[int], from_id: int, to_id: int) -> None:
    """Undo of reassign_members for the rows that still sit with `from_id`."""
    if row_ids:
        session.execute(
            update(MemberIdentifier)
            .where(MemberIdentifier.id.in_(list(row_ids)), MemberIdentifier.member_id == from_id)
            .values(member_id=to_id)
        )


def absorb_profile(
    session: Session, *, survivor: Member, absorbed: Member, now: datetime
) -> dict[str, Any]:
    """Fill the survivor's empty profile fields and missing consents from the absorbed member,
    mark the absorbed one merged, and return {field: [before, after]} for an exact undo."""
    return absorb_profiles(session, [(survivor, absorbed)], now=now)[0]


def absorb_profiles(
    session: Session, pairs: Sequence[tuple[MergedMember, MergedMember]], *, now: datetime
) -> list[dict[str, Any]]:
    """absorb_profile for many (survivor, absorbed) pairs, in Core: the consents read at once,
    the members written with two executemany UPDATEs and the consents with one INSERT and one
    UPDATE (the ORM wrote a statement per member and built an object per consent: most of the
    time of a batch of merges). A survivor may absorb several members. The members are ORM
    objects (kept in step with the rows) or rows of lock_member_rows."""
    ids = sorted({m.id for pair in pairs for m in pair})
    session.flush()  # nothing of the caller's is pending when the rows are read and written
    conn = session.connection()
    held: dict[int, dict[str, _ConsentNow]] = {}
    for start in range(0, len(ids), 500):
        for mid, channel, granted, source, updated_at in conn.execute(
            select(
                Consent.member_id, Consent.channel, Consent.granted, Consent.source,
                Consent.updated_at,
            ).where(Consent.member_id.in_(ids[start : start + 500]))
        ):  # fmt: skip
            held.setdefault(mid, {})[channel] = _ConsentNow(granted, source, updated_at)
    profiles: dict[int, tuple[MergedMember, dict[str, Any]]] = {}
    added: dict[tuple[int, str], _ConsentNow] = {}
    changed: dict[tuple[int, str], _ConsentNow] = {}
    filled: dict[int, set[str]] = {}  # the fields each survivor takes from the absorbed
    changes = []
    for survivor, absorbed in pairs:
        _m, profile = profiles.setdefault(
            survivor.id, (survivor, {f: getattr(survivor, f) for f in _ABSORBED_FIELDS})
        )
        change = _absorb(survivor.id, profile, absorbed, held, added, changed)
        filled.setdefault(survivor.id, set()).update(change["profile"])
        changes.append(change)
    members_t: Table = Member.__table__  # type: ignore[assignment]
    consents_t: Table = Consent.__table__  # type: ignore[assignment]
    # only the fields that change: a column in SET rewrites every index that holds it, even
    # to the same value; one executemany per set of fields (there are few)
    by_fields: dict[tuple[str, ...], list[int]] = {}
    for mid in profiles:
        by_fields.setdefault(tuple(sorted(filled[mid])), []).append(mid)
    for fields, ids_ in by_fields.items():
        conn.execute(
            update(members_t)
            .where(members_t.c.id == bindparam("_id"))
            .values({**{f: bindparam(f) for f in fields}, "updated_at": now}),
            [{"_id": mid, **{f: profiles[mid][1][f] for f in fields}} for mid in ids_],
        )
    conn.execute(
        update(members_t)
        .where(members_t.c.id == bindparam("_id"))
        .values(status="merged", merged_into_id=bindparam("_into"), updated_at=now),
        [{"_id": absorbed.id, "_into": survivor.id} for survivor, absorbed in pairs],
    )
    if added:
        conn.execute(
            insert(consents_t),
            [{"member_id": mid, "channel": ch, "granted": c.granted, "source": c.source,
              "updated_at": c.updated_at} for (mid, ch), c in added.items()],
        )  # fmt: skip
    if changed:
        conn.execute(
            update(consents_t)
            .where(
                consents_t.c.member_id == bindparam("_m"), consents_t.c.channel == bindparam("_c")
            )
            .values(granted=bindparam("_g"), source=bindparam("_s"), updated_at=bindparam("_u")),
            [{"_m": mid, "_c": ch, "_g": c.granted, "_s": c.source, "_u": c.updated_at}
             for (mid, ch), c in changed.items()],
        )  # fmt: skip
    # what the session holds says what the rows now hold: members set without a reload,
    # consents loaded earlier in the transaction reloaded on their next use
    for member, profile in profiles.values():
        if isinstance(member, Member):  # not a row of lock_member_rows
            for f, value in profile.items():
                set_committed_value(member, f, value)
            set_committed_value(member, "updated_at", now)
    for survivor, absorbed in pairs:
        if isinstance(absorbed, Member):
            set_committed_value(absorbed, "status", "merged")
            set_committed_value(absorbed, "merged_into_id", survivor.id)
            set_committed_value(absorbed, "updated_at", now)
    touched = {mid for mid, _ch in changed}
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Consent) and obj.member_id in touched:
            session.expire(obj)
    return changes


_ABSORBED_FIELDS = (*PROFILE_FIELDS, "joined_at")


@dataclass
class _ConsentNow:
    """A consent as a batch of merges leaves it (the row is written once, at the end)."""

    granted: bool
    source: str | None
    updated_at: datetime

    def json(self) -> dict[str, Any]:
        return {"granted": self.granted, "source": self.source,
                "updated_at": self.updated_at.isoformat()}  # fmt: skip


def _absorb(
    survivor_id: int,
    mine: dict[str, Any],
    absorbed: MergedMember,
    held: dict[int, dict[str, _ConsentNow]],
    added: dict[tuple[int, str], _ConsentNow],
    changed: dict[tuple[int, str], _ConsentNow],
) -> dict[str, Any]:
    """Fill `mine` (the survivor's profile as the batch leaves it) and the survivor's consents
    from the absorbed member; returns what changed, for the undo."""
    profile: dict[str, list[Any]] = {}
    for field in PROFILE_FIELDS:
        theirs = getattr(absorbed, field)
        if mine[field] is None and theirs is not None:
            mine[field] = theirs
            profile[field] = [_jsonable(None), _jsonable(theirs)]
    if absorbed.joined_at < mine["joined_at"]:
        profile["joined_at"] = [_jsonable(mine["joined_at"]), _jsonable(absorbed.joined_at)]
        mine["joined_at"] = absorbed.joined_at
    consents: dict[str, list[Any]] = {}
    mine_c = held.setdefault(survivor_id, {})
    for channel, theirs_c in sorted(held.get(absorbed.id, {}).items()):
        own = mine_c.get(channel)
        # The most recent decision wins: an opt-out given on either record is honoured.
        if own is None:
            new = _ConsentNow(theirs_c.granted, theirs_c.source, theirs_c.updated_at)
            mine_c[channel] = added[(survivor_id, channel)] = new
            consents[channel] = [None, theirs_c.json()]
        elif theirs_c.updated_at > own.updated_at and theirs_c.granted != own.granted:
            before = own.json()
            own.granted, own.source, own.updated_at = (
                theirs_c.granted, theirs_c.source, theirs_c.updated_at,
            )  # fmt: skip
            if (survivor_id, channel) not in added:
                changed[(survivor_id, channel)] = own
            consents[channel] = [before, own.json()]
    return {"profile": profile, "consents": consents}


def release_profile(
    session: Session, *, survivor: Member, absorbed: Member, changes: dict[str, Any], now: datetime
) -> None:
    """Undo absorb_profile: fields and consents still as the merge left them go back."""
    for field, (before, after) in changes.get("profile", {}).items():
        if _jsonable(getattr(survivor, field)) == after:
            setattr(survivor, field, _from_json(field, before))
    current = {c.channel: c for c in consents_of(session, survivor.id)}
    for channel, (before, after) in changes.get("consents", {}).items():
        row = current.get(channel)
        if row is None or _consent_json(row) != after:
            continue  # changed since the merge: the newer decision stands
        if before is None:
            session.delete(row)
        else:
            row.granted, row.source = before["granted"], before["source"]
            row.updated_at = datetime.fromisoformat(before["updated_at"])
    absorbed.status, absorbed.merged_into_id, absorbed.updated_at = "active", None, now
    survivor.updated_at = now
    session.flush()


def _consent_json(c: Consent) -> dict[str, Any]:
    return {"granted": c.granted, "source": c.source, "updated_at": c.updated_at.isoformat()}


def _jsonable(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _from_json(field: str, value: Any) -> Any:
    if value is None:
        return None
    column_type = Member.__table__.c[field].type.python_type
    if hasattr(column_type, "fromisoformat"):
        return column_type.fromisoformat(value)
    return value


# --- tags set by merchants and journeys -------------------------------------------------------


def add_tag(
    session: Session, *, member_id: int, tag: str, source: str | None, now: datetime
) -> bool:
    """Tag a member (nothing if they have it); True if it was added."""
    held = session.scalar(
        select(MemberTag.id).where(MemberTag.member_id == member_id, MemberTag.tag == tag).limit(1)
    )
    if held is not None:
        return False
    session.add(MemberTag(member_id=member_id, tag=tag, source=source, created_at=now))
    session.flush()
    return True


def remove_tag(session: Session, *, member_id: int, tag: str) -> int:
    result = session.execute(
        delete(MemberTag).where(MemberTag.member_id == member_id, MemberTag.tag == tag)
    )
    return int(getattr(result, "rowcount", 0))


def tags_of(session: Session, member_id: int) -> list[str]:
    return sorted(
        set(session.scalars(select(MemberTag.tag).where(MemberTag.member_id == member_id)))
    )


def reassign_tags(session: Session, mapping: Mapping[int, int]) -> dict[int, list[int]]:
    return reassign_rows(
        session, id_col=MemberTag.id, member_col=MemberTag.member_id, mapping=mapping
    )


def restore_tags(session: Session, *, row_ids: Sequence[int], from_id: int, to_id: int) -> None:
    restore_rows_of(
        session, id_col=MemberTag.id, member_col=MemberTag.member_id, row_ids=list(row_ids),
        from_id=from_id, to_id=to_id,
    )  # fmt: skip


# --- privacy: what we hold, and forgetting it ------------------------------------------------


def export_rows(session: Session, member_ids: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """Everything this area holds on these members (a data-subject export)."""
    return {
        "members": rows_of(session, Member, Member.id, member_ids),
        "member_identifiers": rows_of(
            session, MemberIdentifier, MemberIdentifier.member_id, member_ids
        ),
        "member_consents": rows_of(session, Consent, Consent.member_id, member_ids),
        "member_consent_changes": rows_of(
            session, ConsentChange, ConsentChange.member_id, member_ids
        ),
        "member_tags": rows_of(session, MemberTag, MemberTag.member_id, member_ids),
    }


ERASABLE = ("name", "gender", "birth_date", "postal_code", "city", "district", "address_line",
            "preferred_language")  # fmt: skip


def erase(session: Session, *, member_ids: Sequence[int], now: datetime) -> None:
    """Forget who these members are: profile fields, identifiers and marketing consents go; the
    member rows stay (anonymous) so that orders, ledgers and totals keep adding up."""
    session.execute(
        update(Member)
        .where(Member.id.in_(list(member_ids)))
        .values({**dict.fromkeys(ERASABLE), "erased_at": now, "updated_at": now})
    )
    session.execute(
        delete(MemberIdentifier).where(MemberIdentifier.member_id.in_(list(member_ids)))
    )
    for member_id in member_ids:
        held = {
            c.channel
            for c in session.scalars(select(Consent).where(Consent.member_id == member_id))
        }
        withdrawn = dict.fromkeys(sorted(held), False)
        set_consents(session, member_id=member_id, consents=withdrawn, source="erasure", now=now)
