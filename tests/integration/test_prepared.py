"""Prepared statements give what SQLAlchemy's own execution gives — values processed by type
both ways, literals bound, errors as SQLAlchemy's exceptions — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from omo.commerce.models import Order, Store
from omo.db import UnitOfWork
from omo.members import service as members
from omo.messaging.models import OutboxMessage
from omo.shared.prepared import Prepared

ORDERS = Order.__table__.c
INSERT_ORDER = Prepared(sa.insert(Order.__table__).returning(ORDERS.id, ORDERS.total))
INSERT_STORE = Prepared(sa.insert(Store.__table__))
INSERT_MESSAGE = Prepared(
    sa.insert(OutboxMessage.__table__).returning(OutboxMessage.__table__.c.id)
)
COMPLETED_SINCE = Prepared(
    sa.select(ORDERS.id, ORDERS.ordered_at, ORDERS.total, ORDERS.subtotal)
    .where(
        ORDERS.status.in_([sa.literal("completed"), sa.literal("placed")]),
        ORDERS.ordered_at >= sa.bindparam("since"),
    )
    .order_by(ORDERS.id)
)
STORE = Prepared(sa.select(Store.__table__).where(Store.__table__.c.code == sa.bindparam("code")))
ADD_TOTAL = Prepared(
    sa.update(Order.__table__)
    .where(ORDERS.id == sa.bindparam("oid"))
    .values(refunded_total=ORDERS.refunded_total + sa.bindparam("amount", type_=ORDERS.total.type))
)

AT = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def order(n: int, **kw: object) -> dict[str, object]:
    values: dict[str, object] = {
        "channel": "pos", "external_id": f"P-{n}", "payload_hash": "x", "member_id": None,
        "store_id": None, "fulfilment": "in_store", "status": "completed",
        "ordered_at": AT + timedelta(days=n), "currency": "TWD", "subtotal": Decimal("1200.50"),
        "discount_total": Decimal("0.25"), "shipping_fee": Decimal(0),
        "total": Decimal("1200.25"), "refunded_total": Decimal(0), "created_at": AT,
    }  # fmt: skip
    values.update(kw)
    return values


def test_values_go_in_and_come_out_as_sqlalchemy_reads_them(uow: UnitOfWork) -> None:
    with uow.write() as session:
        first = INSERT_ORDER.first(session, order(1))
        INSERT_ORDER.rows(session, order(2, status="cancelled"))
        INSERT_ORDER.rows(session, order(3, status="placed", total=Decimal("5.10")))
        assert first is not None and first[1] == Decimal("1200.25")
        since = AT + timedelta(hours=1)
        prepared = COMPLETED_SINCE.rows(session, {"since": since})
        core = session.execute(COMPLETED_SINCE.statement, {"since": since}).all()
    assert prepared == [tuple(r) for r in core]
    assert [r[2] for r in prepared] == [Decimal("1200.25"), Decimal("5.10")]
    assert prepared[0][1] == AT + timedelta(days=1)
    assert prepared[0][1].tzinfo is not None
    with uow.read() as session:
        stored = session.get(Order, first[0])
        assert stored is not None
        assert (stored.subtotal, stored.ordered_at) == (Decimal("1200.50"), AT + timedelta(days=1))


def test_dates_booleans_json_updates_and_many_rows(uow: UnitOfWork) -> None:
    with uow.write() as session:
        INSERT_STORE.execute_many(session, [
            {"code": f"S-{n}", "name": f"店 {n}", "region": "台北市", "city": None, "address": None,
             "opened_on": date(2020, 1, n), "is_active": n % 2 == 1}
            for n in (1, 2)
        ])  # fmt: skip
        row = STORE.first(session, {"code": "S-2"})
        payload = {"order_id": 7, "note": "中文", "nested": [1, 2]}
        mid = INSERT_MESSAGE.scalar(session, {
            "topic": "OrderRecorded", "key": "k-1", "payload": payload, "created_at": AT,
            "available_at": AT, "attempts": 0, "state": "pending", "delivered_at": None,
            "last_error": None,
        })  # fmt: skip
        oid = INSERT_ORDER.scalar(session, order(9))
        assert ADD_TOTAL.execute(session, {"oid": oid, "amount": Decimal("0.75")}) == 1
        assert ADD_TOTAL.execute(session, {"oid": oid + 100, "amount": Decimal(1)}) == 0
    assert row is not None
    assert row[1:] == ("S-2", "店 2", "台北市", None, None, date(2020, 1, 2), False)
    with uow.read() as session:
        message = session.get(OutboxMessage, mid)
        assert message is not None and message.payload == payload
        assert session.get(Order, oid).refunded_total == Decimal("0.75")  # type: ignore[union-attr]
        assert STORE.first(session, {"code": "S-1"})[-1] is True  # type: ignore[index]
        assert STORE.first(session, {"code": "nope"}) is None


def test_a_duplicate_is_sqlalchemys_integrity_error_and_the_run_retries(uow: UnitOfWork) -> None:
    with uow.write() as session:
        INSERT_ORDER.rows(session, order(1))
    with pytest.raises(sa.exc.IntegrityError), uow.write() as session:
        INSERT_ORDER.rows(session, order(1))
    tries: list[int] = []

    def once(session: Session) -> int:
        tries.append(1)
        if len(tries) == 1:
            INSERT_ORDER.rows(session, order(1))  # a lost race: someone recorded it first
        return len(tries)

    assert uow.run(once) == 2


def test_a_missing_parameter_is_an_error_before_the_database(uow: UnitOfWork) -> None:
    with pytest.raises(sa.exc.InvalidRequestError, match="since"), uow.read() as session:
        COMPLETED_SINCE.rows(session, {})


def test_orm_rows_not_yet_flushed_are_seen(uow: UnitOfWork) -> None:
    with uow.write() as session:
        session.add(Store(code="S-9", name="x", region="台北市", is_active=True))
        assert STORE.first(session, {"code": "S-9"}) is not None


def a_member_and_its_lock_probe(engine: sa.Engine) -> tuple[int, Callable[[], bool]]:
    """A member, and a probe that says whether another connection finds it locked."""
    from tests.factories import enrol

    mid = enrol(UnitOfWork(engine), phone="0912-345-678").member.id
    probe = sa.text("SELECT id FROM members WHERE id = :m FOR UPDATE NOWAIT")

    def locked() -> bool:
        with engine.connect() as other:
            try:
                other.execute(probe, {"m": mid})
            except sa.exc.OperationalError:
                return True
            finally:
                other.rollback()
        return False

    return mid, locked


# row locks are PostgreSQL's alone: SQLite's writer holds the whole database
ON_POSTGRES = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


@pytest.mark.postgres
@ON_POSTGRES
def test_a_member_is_held_once_per_transaction_and_again_in_the_next(engine: sa.Engine) -> None:
    """hold_members remembers what its transaction holds; a session that begins another
    transaction locks again."""
    mid, locked = a_member_and_its_lock_probe(engine)
    with Session(engine) as session:
        for _ in range(2):  # two transactions in one session
            with session.begin():
                members.hold_members(session, [mid])
                members.hold_members(session, [mid])  # held already: no second lock taken
                assert locked()
            assert not locked()


@pytest.mark.postgres
@ON_POSTGRES
def test_a_sale_holds_its_member_as_it_reads_who_it_is(engine: sa.Engine) -> None:
    """current_member_id(hold=True) locks the member in the read itself, and hold_members then
    knows it is held; without hold the read locks nothing."""
    mid, locked = a_member_and_its_lock_probe(engine)
    with Session(engine) as session:
        with session.begin():
            assert members.current_member_id(session, mid) == mid
            assert not locked()
        with session.begin():
            assert members.current_member_id(session, mid, hold=True) == mid
            assert locked()
            assert session.info["omo.held_members"][1] == {mid}
        assert not locked()


TWICE = Prepared(
    sa.select(ORDERS.id).where(
        sa.or_(ORDERS.total == sa.bindparam("amount"), ORDERS.subtotal == sa.bindparam("amount")),
        ORDERS.ordered_at >= sa.bindparam("since"),
        ORDERS.channel == "pos",  # a literal, bound as a parameter
    )
)


@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql+psycopg"])
@pytest.mark.parametrize(
    ("statement", "params"),
    [
        (INSERT_ORDER, order(1)),
        (INSERT_STORE, {"code": "S1", "name": "一號店", "region": "TW"}),
        (COMPLETED_SINCE, {"since": AT}),
        (ADD_TOTAL, {"oid": 7, "amount": Decimal("10.05")}),
        (TWICE, {"amount": Decimal("3.50"), "since": AT}),
        (TWICE, {"amount": Decimal("3.50"), "since": AT, "channel_1": "web"}),  # literal given
    ],
)
def test_the_one_pass_parameters_are_sqlalchemys(
    dialect_name: str, statement: Prepared, params: dict[str, object]
) -> None:
    from dataclasses import replace

    dialect = sa.create_engine(f"{dialect_name}://").dialect
    keys = tuple(sorted(params)) if isinstance(statement.statement, sa.Insert) else None
    compiled = statement._compile(dialect, keys)
    assert compiled.plan is not None
    assert statement._parameters(compiled, params) == statement._parameters(
        replace(compiled, plan=None), params
    )
    for name in params:  # a missing parameter: SQLAlchemy's error, as before
        required = {k: v for k, v in params.items() if k != name}
        if name == "channel_1":
            continue
        with pytest.raises(sa.exc.InvalidRequestError, match="A value is required"):
            statement._parameters(compiled, required)
