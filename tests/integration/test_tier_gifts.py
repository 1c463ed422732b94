"""The monthly gift of a tier level (SQLite + PostgreSQL): each active member on the level gets
the level's coupon once a month, however often the daily job runs; refusals are counted."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from omo.cli import app
from omo.coupons import service as coupons
from omo.coupons.rules import CouponTemplate
from omo.db import UnitOfWork
from omo.settings import get_settings
from omo.shared import clock
from omo.shared.errors import ValidationFailed
from omo.tiers import gifts
from omo.tiers import service as tiers
from omo.tiers.policy import DEFAULT_PROGRAMME, TierProgramme
from tests.conftest import dump
from tests.factories import enrol, post_order


def _member(uow: UnitOfWork, phone: str, spend: str | None) -> int:
    mid = enrol(uow, phone=phone).member.id
    if spend:
        post_order(uow, customer=[{"kind": "phone", "value": phone}],
                   lines=[{"sku": "OLD", "quantity": 1, "unit_price": spend}])  # fmt: skip
    return mid


def _programme(**gift: str) -> TierProgramme:
    """The default programme, with a monthly gift on the levels named."""
    data = DEFAULT_PROGRAMME.model_dump(mode="json")
    for level in data["levels"]:
        if level["code"] in gift:
            level["benefits"]["monthly_gift"] = gift[level["code"]]
    return TierProgramme.model_validate(data)


def _template(uow: UnitOfWork, code: str, per_member: int) -> None:
    t = CouponTemplate(name=code, kind="amount_off", amount=Decimal(50), valid_days=31,
                       per_member_limit=per_member)  # fmt: skip
    coupons.put_template(uow, code=code, template=t)


def held(uow: UnitOfWork, member_id: int) -> list[str]:
    return sorted(c.template for c in coupons.member_coupons(uow, member_id=member_id))


def test_each_level_gets_its_gift_once_a_month(uow: UnitOfWork) -> None:
    _template(uow, "GOLDGIFT", per_member=100)
    _template(uow, "BASEGIFT", per_member=1)
    clock.set_clock(lambda: datetime(2026, 3, 31, 15, 30, tzinfo=UTC))  # 23:30 in Taipei
    gold = _member(uow, "0911-111-111", "40000")
    silver = _member(uow, "0922-222-222", "12000")
    new = _member(uow, "0933-333-333", None)  # never placed: the base level
    tiers.set_programme(uow, programme=_programme(gold="GOLDGIFT", member="BASEGIFT"), actor="t")
    first = gifts.give_monthly(uow)
    assert (first.period, first.holding, first.refused) == (
        "2026-03", {"GOLDGIFT": 1, "BASEGIFT": 1}, {},
    )  # fmt: skip
    again = gifts.give_monthly(uow)  # the job runs daily
    assert again.holding == first.holding
    assert (held(uow, gold), held(uow, silver), held(uow, new)) == (
        ["GOLDGIFT"], [], ["BASEGIFT"],
    )  # fmt: skip
    clock.set_clock(lambda: datetime(2026, 3, 31, 16, 30, tzinfo=UTC))  # April in Taipei
    april = gifts.give_monthly(uow)
    assert (april.period, april.holding, april.refused) == (
        "2026-04", {"GOLDGIFT": 1}, {"per_member_limit": 1},
    )  # fmt: skip
    assert held(uow, gold) == ["GOLDGIFT", "GOLDGIFT"]


def test_a_programme_naming_an_unknown_template_is_refused(
    uow: UnitOfWork, engine: sa.Engine
) -> None:
    before = dump(engine)
    with pytest.raises(ValidationFailed) as refused:
        tiers.set_programme(uow, programme=_programme(gold="NOPE"), actor="t")
    assert refused.value.field == "levels.2.benefits.monthly_gift"
    assert dump(engine) == before
    assert gifts.give_monthly(uow).holding == {}  # no level gives one


def test_the_job_runs_from_the_command_line(
    uow: UnitOfWork, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _template(uow, "GOLDGIFT", per_member=100)
    _member(uow, "0911-111-111", "40000")
    tiers.set_programme(uow, programme=_programme(gold="GOLDGIFT"), actor="t")
    monkeypatch.setenv("OMO_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(app, ["tier-gifts"])
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    assert "GOLDGIFT 1" in done.output
