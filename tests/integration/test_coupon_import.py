"""Coupons from the programme before (`omo import coupons`, SQLite + PostgreSQL): each keeps its
code and works at the till as a coupon of one of this programme's templates, bound to its
member or a bearer code used once; a bad row refuses the file and names itself; a second
import changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from omo.coupons import service as coupons
from omo.coupons.rules import CouponTemplate
from omo.coupons.schemas import BasketIn
from omo.db import UnitOfWork
from omo.shared import clock
from omo.transfer.importer import ImportRefused, import_file
from tests.conftest import dump
from tests.factories import csv_file, enrol

NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
HEADER = ["code", "template", "member_id", "phone", "valid_from", "valid_until"]
BASKET = BasketIn.model_validate(
    {"channel": "pos", "lines": [{"sku": "S", "quantity": 1, "unit_price": "500"}]}
)


@pytest.fixture
def shop(uow: UnitOfWork) -> dict[str, Any]:
    clock.set_clock(lambda: NOW)
    for code, extra in (("OLD100", {}), ("CAP", {"max_issued": 1}),
                        ("SHARED", {"shared_code": True})):  # fmt: skip
        coupons.put_template(uow, code=code, template=CouponTemplate(
            name=code, kind="amount_off", amount=Decimal(100), **extra))  # fmt: skip
    alice = enrol(uow, phone="0912-000-001").member.id
    bob = enrol(uow, phone="0912-000-002").member.id
    return {"alice": alice, "bob": bob}


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    return csv_file(path, HEADER, rows)


def good(shop: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"code": "vip-2026-0001", "template": "OLD100", "phone": "0912000001",
         "valid_until": "2026-12-31"},
        {"code": "ABCDEFGHJKMN", "template": "OLD100", "member_id": shop["bob"]},
        {"code": "BEARER01", "template": "OLD100"},
    ]  # fmt: skip


def test_imported_coupons_keep_their_codes_and_work_at_the_till(
    shop: dict[str, Any], uow: UnitOfWork, engine: sa.Engine, tmp_path: Path
) -> None:
    path = write(tmp_path / "c.csv", good(shop))
    report = import_file(uow, kind="coupons", path=path)
    assert (report.created, report.unchanged) == (3, 0)
    held = {c.code: c for c in coupons.member_coupons(uow, member_id=shop["alice"])}
    assert held["VIP-2026-0001"].valid_until == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    # read as a till reads a code: case, spaces, dashes
    bobs = coupons.check(uow, code="abcd efgh jkmn", basket=BASKET, member_id=shop["bob"])
    assert (bobs.code, bobs.usable, bobs.discount) == ("ABCD-EFGH-JKMN", True, Decimal(100))
    theirs = coupons.check(uow, code="ABCDEFGHJKMN", basket=BASKET, member_id=shop["alice"])
    assert (theirs.usable, theirs.reason) == (False, "wrong_member")
    # a bearer code: anyone, once
    used = coupons.redeem(uow, code="bearer01", basket=BASKET, member_id=shop["bob"],
                          key="till-1")  # fmt: skip
    assert used.discount == Decimal(100)
    again = coupons.check(uow, code="BEARER01", basket=BASKET, member_id=shop["alice"])
    assert (again.usable, again.reason) == (False, "already_used")
    with uow.read() as session:
        assert coupons.check_counters(session) == []

    before = dump(engine)
    rerun = import_file(uow, kind="coupons", path=path)
    assert (rerun.created, rerun.unchanged) == (0, 3)
    assert dump(engine) == before


def test_bad_rows_refuse_the_file_each_named(
    shop: dict[str, Any], uow: UnitOfWork, engine: sa.Engine, tmp_path: Path
) -> None:
    ours = coupons.issue(uow, template_code="OLD100", member_ids=[shop["alice"]], key="k")
    taken = ours.issued[0].code
    before = dump(engine)
    rows = [
        {"code": "GOODCODE0001", "template": "OLD100", "member_id": shop["bob"]},
        {"code": "NOPE0001", "template": "MISSING"},
        {"code": "SHRD0001", "template": "SHARED"},
        {"code": taken.lower(), "template": "OLD100"},
        {"code": "OLD00001", "template": "OLD100", "valid_until": "2026-02-28"},
        {"code": "WHO00001", "template": "OLD100", "phone": "0912-999-999"},
        {"code": "AB", "template": "OLD100"},
        {"code": "good-code-0001", "template": "OLD100"},
        {"code": "CAP00001", "template": "CAP", "member_id": shop["alice"]},
        {"code": "CAP00002", "template": "CAP", "member_id": shop["bob"]},
        {"code": "DAY00001", "template": "OLD100", "valid_from": "2026-05-01",
         "valid_until": "2026-04-01"},
    ]  # fmt: skip
    with pytest.raises(ImportRefused) as refused:
        import_file(uow, kind="coupons", path=write(tmp_path / "bad.csv", rows))
    got = {(e.row, e.column): e.message for e in refused.value.errors}
    assert set(got) == {
        (3, "template"), (4, "template"), (5, "code"), (6, "valid_until"), (7, "phone"),
        (8, "code"), (9, "code"), (11, "template"), (12, "valid_until"),
    }  # fmt: skip
    assert got[3, "template"] == "no coupon template 'MISSING' (create it first)"
    assert got[5, "code"] == f"the code {taken} is already in use here"
    assert got[9, "code"] == "repeats row 2"  # as a till reads them, one code
    assert got[11, "template"] == "the template's issue budget has 1 left"
    assert dump(engine) == before


def test_a_coupon_goes_to_whom_its_member_was_merged_into(
    shop: dict[str, Any], uow: UnitOfWork
) -> None:
    """Checked for bob, written after bob was merged into alice: it is alice's."""
    from omo.coupons import imported
    from omo.identity import service as identity

    item = imported.ImportedCoupon(code="MERGED01", template="OLD100", member_id=shop["bob"])
    identity.merge_use_case(uow, survivor_id=shop["alice"], absorbed_id=shop["bob"], note=None,
                            actor="t")  # fmt: skip
    assert imported.import_coupons(uow, items=[(shop["bob"], item)], actor="t") == (1, 0)
    check = coupons.check(uow, code="MERGED01", basket=BASKET, member_id=shop["alice"])
    assert check.usable, check
