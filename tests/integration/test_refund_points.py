"""Points a sale was paid with come back on a refund to the very lots they were spent from,
with their dates, whether the refund is whole or by lines (CHK-3, PTS-3): a return never gives
points a new life, and returns by lines add up to the whole refund."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from omo.checkout import service as checkout
from omo.checkout.refunds import RefundLine, RefundRequest, refund
from omo.checkout.schemas import CommitRequest
from omo.db import UnitOfWork
from omo.points import service as points
from omo.points.models import PointsEntry
from omo.points.schemas import PointsChange
from omo.shared import clock
from tests.factories import ADMIN, enrol, store

T0 = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)


@pytest.fixture
def shop(uow: UnitOfWork) -> Iterator[None]:
    store(uow, "TPE-101")
    yield
    clock.reset_clock()


def _at(moment: datetime) -> None:
    clock.set_clock(lambda: moment)


def _member_with_lots(uow: UnitOfWork, gifts: list[int]) -> int:
    """A member given `gifts` points a month apart: lots that expire a month apart."""
    _at(T0)
    mid = enrol(uow, phone=f"09{uuid.uuid4().int % 10**8:08d}").member.id
    for n, gift in enumerate(gifts):
        _at(T0 + timedelta(days=31 * n))
        points.adjust(uow, member_id=mid, actor="t", change=PointsChange(
            points=gift, idempotency_key=f"{mid}-{n}", reason="gift"))  # fmt: skip
    return mid


def _lots(uow: UnitOfWork, mid: int) -> dict[int, tuple[int, datetime | None, str]]:
    with uow.read() as s:
        rows = s.scalars(
            select(PointsEntry).where(PointsEntry.member_id == mid, PointsEntry.points > 0,
                                      PointsEntry.kind != "reverse")
        )  # fmt: skip
        return {e.id: (e.remaining, e.expires_at, e.kind) for e in rows}


def _sell(uow: UnitOfWork, mid: int, lines: list[int], pay: int, external_id: str) -> Any:
    body = {
        "channel": "pos", "store": "TPE-101", "member_id": mid, "external_id": external_id,
        "points": pay,
        "lines": [{"sku": f"S{n}", "quantity": 1, "unit_price": str(price)}
                  for n, price in enumerate(lines)],
    }  # fmt: skip
    req = CommitRequest.model_validate(body)
    return checkout.commit(uow, req=req, principal=ADMIN, currency="TWD", region="TW")


def _return(uow: UnitOfWork, order_id: int, key: str, lines: list[int] | None) -> Any:
    req = RefundRequest(
        idempotency_key=key,
        lines=None if lines is None else [RefundLine(line_no=n, quantity=1) for n in lines],
    )
    return refund(uow, order_id=order_id, req=req, actor="t")


def test_a_return_by_lines_gives_back_the_last_spent_points_first_with_their_dates(
    uow: UnitOfWork, shop: None
) -> None:
    """100 points a month apart, 250 spent (the oldest first): returning half the goods gives
    back 125 — the 50 taken from the third lot and 75 of the second — never a lot of their own
    with a year to live."""
    mid = _member_with_lots(uow, [100, 100, 100])
    before = _lots(uow, mid)
    first, second, third = sorted(before)
    _at(T0 + timedelta(days=70))
    sale = _sell(uow, mid, [1000, 1000], 250, "LIFO-1")
    assert sale.price.points_redeemed == 250
    earned = {i for i, (_, _, kind) in _lots(uow, mid).items() if kind == "earn"}
    half = _return(uow, sale.order.id, "h1", [2])
    assert half.points_given_back == 125
    now = {i: r for i, (r, _, _) in _lots(uow, mid).items() if i not in earned}
    assert now == {first: 0, second: 75, third: 100}  # no new lot; dates as they were
    rest = _return(uow, sale.order.id, "h2", [1])
    assert rest.points_given_back == 125 and rest.order.status == "refunded"
    assert {i: v for i, v in _lots(uow, mid).items() if i not in earned} == before


def test_points_given_back_after_their_date_come_back_expired(uow: UnitOfWork, shop: None) -> None:
    mid = _member_with_lots(uow, [100])  # expires a year after T0
    _at(T0 + timedelta(days=300))
    sale = _sell(uow, mid, [500, 500], 100, "LATE-1")
    _at(T0 + timedelta(days=400))  # past the lot's date: a return then gives nothing to spend
    assert _return(uow, sale.order.id, "l1", [1]).points_given_back == 50
    kept = sum(r for r, _, kind in _lots(uow, mid).values() if kind == "earn")  # the sale's own
    assert points.summary(uow, member_id=mid).available == kept
    assert points.expire_due(uow) == 50  # written off as expired, as they would have been


@settings(
    max_examples=int(os.environ.get("OMO_EXAMPLES", "15")),
    derandomize=os.environ.get("CI") == "true",
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    gifts=st.lists(st.integers(1, 300), min_size=1, max_size=5),
    prices=st.lists(st.integers(50, 900), min_size=1, max_size=4),
    pay=st.integers(1, 2_000),
    order=st.randoms(use_true_random=False),
    parts=st.integers(1, 4),
    wait=st.sampled_from([0, 20, 200, 400]),
)
def test_returns_by_lines_end_as_the_whole_refund(
    uow: UnitOfWork,
    shop: None,
    gifts: list[int],
    prices: list[int],
    pay: int,
    order: Any,
    parts: int,
    wait: int,
) -> None:
    """Any lots, any basket, any points paid, the lines returned in any order and groups,
    before or after some lots' dates: no return adds a lot or raises one above what it held
    before the sale, and once all is returned every lot holds what it held before — as one
    whole refund leaves them."""
    mid = _member_with_lots(uow, gifts)
    before = _lots(uow, mid)
    sold_at = T0 + timedelta(days=31 * len(gifts))
    _at(sold_at)
    cap = checkout.quote(
        uow, req=CommitRequest.model_validate(
            {"channel": "pos", "store": "TPE-101", "member_id": mid, "external_id": "q",
             "lines": [{"sku": f"S{n}", "quantity": 1, "unit_price": str(p)}
                       for n, p in enumerate(prices)]}), region="TW",
    ).points_cap  # fmt: skip
    tag = uuid.uuid4().hex[:8]
    sale = _sell(uow, mid, prices, min(pay, cap), f"P-{tag}") if min(pay, cap) else None
    if sale is None:
        return
    earned = {i for i, (_, _, kind) in _lots(uow, mid).items() if kind == "earn"}
    _at(sold_at + timedelta(days=wait))
    line_nos = list(range(1, len(prices) + 1))
    order.shuffle(line_nos)
    groups = [line_nos[k::parts] for k in range(parts)]
    given_back = 0
    for k, group in enumerate(g for g in groups if g):
        given_back += _return(uow, sale.order.id, f"{tag}-{k}", group).points_given_back
        now = _lots(uow, mid)
        assert set(now) - set(before) <= earned  # no lot of a refund's own
        assert all(now[i][0] <= before[i][0] for i in before)
    assert given_back == sale.price.points_redeemed
    assert {i: v for i, v in _lots(uow, mid).items() if i not in earned} == before
    with uow.read() as s:
        assert points.check_ledger(s) == []


def test_a_whole_refund_gives_back_what_it_took(uow: UnitOfWork, shop: None) -> None:
    mid = _member_with_lots(uow, [40, 40, 40])
    before = _lots(uow, mid)
    _at(T0 + timedelta(days=70))
    sale = _sell(uow, mid, [300, 300], 100, "W-1")
    earned = {i for i, (_, _, kind) in _lots(uow, mid).items() if kind == "earn"}
    assert _return(uow, sale.order.id, "w", None).points_given_back == 100
    assert {i: v for i, v in _lots(uow, mid).items() if i not in earned} == before


def test_points_a_sale_earned_and_the_member_spent_come_off_what_its_refund_gives_back(
    uow: UnitOfWork, shop: None
) -> None:
    """100 points pay for a sale that earns 5; once available, the 5 buy a reward. Returning
    the sale gives back the 100 and takes back the 5 from them: the member ends with 95, as if
    the sale had not been made and the reward bought with the points held before it. (Taken
    back first, the 5 found nothing to come off and were written off: 100 were left.)"""
    from omo.rewards import service as rewards
    from omo.rewards.schemas import RewardIn, RewardRedeem

    mid = _member_with_lots(uow, [100])
    _at(T0 + timedelta(days=1))
    sale = _sell(uow, mid, [300, 300], 100, "OWE-1")
    assert (sale.price.points_redeemed, sale.points_earned) == (100, 5)
    _at(T0 + timedelta(days=10))  # past the return window: the 5 are available
    rewards.put_reward(uow, code="PIN", data=RewardIn(name="pin", points=5), actor="t")
    rewards.redeem(uow, member_id=mid, code="PIN", actor="t",
                   req=RewardRedeem(idempotency_key="pin"))  # fmt: skip
    assert points.summary(uow, member_id=mid).available == 0
    done = _return(uow, sale.order.id, "o1", None)
    assert (done.points_given_back, done.points_taken_back, done.points_short) == (100, 5, 0)
    assert points.summary(uow, member_id=mid).available == 95
    with uow.read() as s:
        assert points.check_ledger(s) == []


def _earn_six_spend_four(uow: UnitOfWork, external_id: str) -> tuple[int, Any]:
    """A new member's NT$600 sale earns 6; ten days on (past the return window) they spend 4
    on a reward and hold 2."""
    from omo.rewards import service as rewards
    from omo.rewards.schemas import RewardIn, RewardRedeem

    _at(T0)
    mid = enrol(uow, phone=f"09{uuid.uuid4().int % 10**8:08d}").member.id
    sale = _sell(uow, mid, [300, 300], 0, external_id)
    assert sale.points_earned == 6
    _at(T0 + timedelta(days=10))
    rewards.put_reward(uow, code="PIN", data=RewardIn(name="pin", points=4), actor="t")
    rewards.redeem(uow, member_id=mid, code="PIN", actor="t",
                   req=RewardRedeem(idempotency_key=f"pin-{external_id}"))  # fmt: skip
    return mid, sale


def test_a_refund_says_what_it_could_not_take_back_and_its_value(
    uow: UnitOfWork, shop: None, api: Any
) -> None:
    """A sale paid in money earns 5; the member spends them and holds nothing else: its return
    writes them off and says so, with their value, for the till to settle by its policy."""
    mid, sale = _earn_six_spend_four(uow, "SHORT-1")
    r = api.post(f"/api/v1/orders/{sale.order.id}/refund", json={"idempotency_key": "s1"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["points_taken_back"], got["points_short"], got["points_short_value"]) == (
        2,
        4,
        "4.00",
    )
    again = api.post(f"/api/v1/orders/{sale.order.id}/refund", json={"idempotency_key": "s1"})
    assert again.json() == {**got, "replayed": True, "order": again.json()["order"]}
    # the order says it keeps none of what it earned: 2 taken back, 4 written off
    assert api.get(f"/api/v1/orders/{sale.order.id}").json()["points_earned"] == 0
    assert points.summary(uow, member_id=mid).available == 0
    with uow.read() as s:
        assert points.check_ledger(s) == []


def test_points_written_off_by_one_return_are_not_taken_again_by_the_next(
    uow: UnitOfWork, shop: None
) -> None:
    """NT$600 earns 6 and the member spends 4. Returning half owes 3, finds 2 and writes 1
    off. The member then earns 10 on another sale. Returning the other half owes 3 — not 4
    (its 3 and the 1 written off): the written-off point is not taken from the new 10."""
    mid, sale = _earn_six_spend_four(uow, "OFF-1")
    first = _return(uow, sale.order.id, "w1", [1])
    assert (first.points_taken_back, first.points_short) == (2, 1)
    assert _sell(uow, mid, [1000], 0, "OFF-2").points_earned == 10
    last = _return(uow, sale.order.id, "w2", [2])
    assert (last.points_taken_back, last.points_short) == (3, 0)
    held = points.summary(uow, member_id=mid)
    assert (held.available, held.pending) == (0, 7)  # the new 10 less 3
    with uow.read() as s:
        assert points.check_ledger(s) == []


def test_a_store_that_charges_spent_points_keeps_their_value_back(
    uow: UnitOfWork, shop: None, api: Any
) -> None:
    """The same, under a policy that charges them: NT$600 earns 6, the member spends 4 of them.
    Returning half takes back 3 and finds 2: the 1 short costs NT$1 off the money (299). The
    other half finds nothing: 3 short, 297 back. The store keeps the 4 the points bought, the
    order is refunded in full with nothing left to give back, and `omo check` agrees."""
    from decimal import Decimal

    from omo.checkout import receipts
    from omo.commerce import service as commerce
    from omo.commerce.returns_policy import Policy, set_policy

    mid, sale = _earn_six_spend_four(uow, "CHARGE-1")
    set_policy(uow, policy=Policy(spent_points="charge"), actor="t")
    weighed = api.post(f"/api/v1/orders/{sale.order.id}/refund-quote",
                       json={"lines": [{"line_no": 1, "quantity": 1}]}).json()  # fmt: skip
    # weighed first: the same figures the return gives, and nothing changes
    assert (weighed["amount"], weighed["points_short"], weighed["points_charged"]) == (
        "299.00", 1, "1.00")  # fmt: skip
    first = _return(uow, sale.order.id, "c1", [1])
    assert (first.amount, first.points_taken_back, first.points_short, first.points_charged) == (
        Decimal(299), 2, 1, Decimal(1))  # fmt: skip
    assert receipts.get_order(uow, order_id=sale.order.id).refundable == Decimal(300)
    again = _return(uow, sale.order.id, "c1", [1])
    assert again.replayed and (again.amount, again.points_charged) == (Decimal(299), Decimal(1))
    last = _return(uow, sale.order.id, "c2", [2])
    assert (last.amount, last.points_short, last.points_charged) == (Decimal(297), 3, Decimal(3))
    shown = receipts.get_order(uow, order_id=sale.order.id)
    assert (shown.status, shown.refunded_total, shown.refundable) == (
        "refunded", Decimal(596), Decimal(0))  # fmt: skip
    assert [r.points_charged for r in shown.refunds] == [Decimal(1), Decimal(3)]
    assert points.summary(uow, member_id=mid).available == 0
    with uow.read() as s:
        assert points.check_ledger(s) == [] and commerce.check_orders_and_stats(s) == []


def test_a_return_of_double_points_goods_takes_back_what_they_earned(
    uow: UnitOfWork, shop: None
) -> None:
    """美妝保養 earns double: 1,000 of it and 2 × 1,000 of clothes earn 20 + 10 + 10. Returning
    the 美妝保養 takes back its 20, not the 13 its money's share would (a member could buy
    double-points goods with others and keep the double points of those returned). The
    measure is the rules the sale earned under, though they change before the next return."""
    from decimal import Decimal

    from omo.commerce import service as commerce
    from omo.commerce.schemas import ProductUpsert
    from omo.points.rules import PointsRules

    for sku, category in (("DBL", "美妝保養"), ("ONE", "服飾"), ("TWO", "服飾")):
        commerce.save_product(uow, sku=sku, data=ProductUpsert(
            name=sku, category=category, price=Decimal(1000)))  # fmt: skip
    _at(T0)
    points.set_programme(uow, actor="t", rules=PointsRules(
        spend_per_point=Decimal(100), category_multipliers={"美妝保養": Decimal(2)}))  # fmt: skip
    mid = enrol(uow, phone=f"09{uuid.uuid4().int % 10**8:08d}").member.id
    req = CommitRequest.model_validate({
        "channel": "pos", "store": "TPE-101", "member_id": mid, "external_id": "DBL-1",
        "lines": [{"sku": s, "quantity": 1} for s in ("DBL", "ONE", "TWO")]})  # fmt: skip
    sale = checkout.commit(uow, req=req, principal=ADMIN, currency="TWD", region="TW")
    assert sale.points_earned == 40
    assert _return(uow, sale.order.id, "dbl", [1]).points_taken_back == 20
    _at(T0 + timedelta(days=1))
    points.set_programme(uow, actor="t", rules=PointsRules(spend_per_point=Decimal(100)))
    assert _return(uow, sale.order.id, "one", [2]).points_taken_back == 10  # not 13 of 40
    assert _return(uow, sale.order.id, "two", [3]).points_taken_back == 10


def test_a_birthday_month_doubles_what_a_sale_earns_and_a_return_takes_back(
    uow: UnitOfWork, shop: None
) -> None:
    """Under a programme with a birthday multiplier of 2, a member born in January earns double
    on 5 January, in the quote, the sale and an order from the web shop; one born in February
    does not; returning one of two like lines takes back half of what the sale earned."""
    from datetime import date
    from decimal import Decimal

    from omo.checkout.schemas import QuoteRequest
    from omo.points.rules import PointsRules
    from tests.factories import post_order

    _at(T0)
    points.set_programme(uow, actor="t", rules=PointsRules(birthday_multiplier=Decimal(2)))
    january, february = (
        enrol(uow, phone=f"09{uuid.uuid4().int % 10**8:08d}", birth_date=born).member.id
        for born in (date(1990, 1, 30), date(1990, 2, 1))
    )
    body = {"channel": "pos", "store": "TPE-101", "member_id": january,
            "lines": [{"sku": "A", "quantity": 1, "unit_price": "500"},
                      {"sku": "B", "quantity": 1, "unit_price": "500"}]}  # fmt: skip
    assert (
        checkout.quote(uow, req=QuoteRequest.model_validate(body), region="TW").points_to_earn == 20
    )
    sale = _sell(uow, january, [500, 500], 0, "BD-1")
    assert sale.points_earned == 20
    assert _sell(uow, february, [500, 500], 0, "BD-2").points_earned == 10
    with uow.read() as s:
        reason = s.scalar(select(PointsEntry.reason).where(PointsEntry.order_id == sale.order.id))
    assert reason is not None and "birthday month ×2" in reason
    web = post_order(uow, member_id=january, ordered_at=T0.isoformat(),
                     lines=[{"sku": "W", "quantity": 1, "unit_price": "1000"}])  # fmt: skip
    with uow.read() as s:
        earned = s.scalar(select(PointsEntry.points).where(PointsEntry.order_id == web.id))
    assert earned == 20
    assert _return(uow, sale.order.id, "bd-1", [1]).points_taken_back == 10
