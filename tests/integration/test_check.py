"""`omo check` (SQLite + PostgreSQL): zero differences after real activity; a tampered ledger,
coupon counter, stat or referral is named."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from omo.checkout import service as checkout
from omo.checkout.refunds import RefundLine, RefundRequest, refund
from omo.checkout.schemas import CommitRequest
from omo.cli import app
from omo.coupons import service as coupons
from omo.coupons.rules import CouponTemplate
from omo.db import UnitOfWork
from omo.points import service as points
from omo.points.schemas import PointsChange
from omo.referrals import service as referrals
from omo.settings import get_settings
from tests.factories import ADMIN, enrol, store


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("OMO_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def activity(uow: UnitOfWork) -> None:
    store(uow, "TPE-101")
    mid = enrol(uow, phone="0912-345-678").member.id
    points.adjust(
        uow,
        member_id=mid,
        change=PointsChange(points=300, idempotency_key="s", reason="s"),
        actor="t",
    )
    coupons.put_template(
        uow, code="C", template=CouponTemplate(name="c", kind="amount_off", amount=Decimal(50))
    )
    code = coupons.issue(uow, template_code="C", member_ids=[mid], key="k").issued[0].code
    line = {"sku": "A", "quantity": 2, "unit_price": "400"}
    for n, extra in enumerate(({"coupon_codes": [code], "points": 100}, {"points": 50}, {})):
        req = CommitRequest.model_validate({"channel": "pos", "store": "TPE-101", "member_id": mid,
                                            "lines": [line], "external_id": f"P-{n}", **extra})  # fmt: skip
        order = checkout.commit(uow, req=req, principal=ADMIN, currency="TWD", region="TW").order
        if n == 0:
            refund(uow, order_id=order.id, req=RefundRequest(idempotency_key="r"), actor="t")
        if n == 1:
            part = RefundRequest(idempotency_key="p", lines=[RefundLine(line_no=1, quantity=1)])
            refund(uow, order_id=order.id, req=part, actor="t")
    # two referrals: one rewarded, one whose qualifying order was returned (bonuses taken back)
    code = referrals.code_for(uow, member_id=mid, link="{code}").code
    for n, phone in enumerate(("0912-000-801", "0912-000-802")):
        friend = enrol(uow, phone=phone, referral_code=code).member.id
        req = CommitRequest.model_validate({"channel": "pos", "store": "TPE-101",
                                            "member_id": friend, "lines": [line],
                                            "external_id": f"F-{n}"})  # fmt: skip
        order = checkout.commit(uow, req=req, principal=ADMIN, currency="TWD", region="TW").order
        if n == 1:
            refund(uow, order_id=order.id, req=RefundRequest(idempotency_key="f"), actor="t")


def test_check_finds_nothing_after_real_activity_and_names_tampering(
    cli: CliRunner, uow: UnitOfWork
) -> None:
    activity(uow)
    clean = cli.invoke(app, ["check"])
    assert clean.exit_code == 0, clean.output
    assert clean.output.count(": 0 difference(s)") == 5
    with uow.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE points_entries SET remaining = remaining + 1 WHERE kind = 'adjust'")
        )
        conn.execute(sa.text("UPDATE coupon_templates SET redeemed = redeemed + 5"))
        conn.execute(sa.text("UPDATE member_stats SET total_spend = total_spend + 100"))
        conn.execute(sa.text("UPDATE referrals SET referee_points = 70 WHERE status = 'rewarded'"))
        conn.execute(sa.text("UPDATE referrals SET status = 'rewarded' WHERE status = 'pending'"))
        # a refund's give-back returning two points more to a lot than its sale took from it
        conn.execute(sa.text(
            "UPDATE points_allocations SET points = points - 2 WHERE debit_id = (SELECT min(id) "
            "FROM points_entries WHERE kind = 'reverse' AND points > 0)"
        ))  # fmt: skip
        # a refund that kept back for spent points more than its order had left
        conn.execute(sa.text(
            "UPDATE order_refunds SET points_charged = 100000000 WHERE id = (SELECT min(id) "
            "FROM order_refunds)"
        ))  # fmt: skip
    dirty = cli.invoke(app, ["check"])
    assert dirty.exit_code == 1
    assert "points lot" in dirty.output
    assert "given back to lot" in dirty.output
    assert "(spent points, used coupons given for it), more than its total" in dirty.output
    assert "template C" in dirty.output
    assert "stats say" in dirty.output
    assert "referrals: 3 difference(s)" in dirty.output
    assert "the referee holds a bonus of 50, the referral says 70" in dirty.output


def test_daily_jobs_run_from_the_command_line(cli: CliRunner, uow: UnitOfWork) -> None:
    activity(uow)
    expired = cli.invoke(app, ["expire-points"])
    assert expired.exit_code == 0, expired.output
    assert expired.output.startswith("expired 0 points")
    lapsed = cli.invoke(app, ["lapse-referrals"])
    assert lapsed.exit_code == 0 and lapsed.output == "0 referral(s) lapsed\n", lapsed.output
    reviewed = cli.invoke(app, ["review-tiers"])
    assert reviewed.exit_code == 0, reviewed.output
    assert "tier change" in reviewed.output
