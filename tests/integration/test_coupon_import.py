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


def test_coupons_move_to_another_database(
    shop: dict[str, Any], uow: UnitOfWork, tmp_path: Path
) -> None:
    """`omo export coupons` writes every coupon still usable, in the columns the import reads:
    moved into another database that has the templates (members first), each member holds the
    same codes, valid as long; a used, a void, an expired and a shared code stay behind, and so
    does an erased member's coupon (without its member it would come back as a bearer code)."""
    from omo.db import make_engine
    from omo.privacy import service as privacy
    from omo.settings import Settings
    from omo.transfer.exporter import export
    from tests.conftest import migrate

    import_file(uow, kind="coupons", path=write(tmp_path / "c.csv", good(shop)))
    camp = CouponTemplate(name="CAMP", kind="amount_off", amount=Decimal(50))
    coupons.put_template(uow, code="CAMP", template=camp)
    coupons.redeem(uow, code="BEARER01", basket=BASKET, member_id=None, key="till-1")
    issued = coupons.issue(uow, template_code="CAMP", member_ids=[shop["alice"]], key="camp")
    assert len(issued.issued) == 1
    coupons.shared_code(uow, template_code="SHARED")
    carl = enrol(uow, phone="0912-000-003").member.id
    coupons.issue(uow, template_code="CAMP", member_ids=[carl], key="camp")
    privacy.erase(uow, member_id=carl, actor="dpo")
    with uow.engine.begin() as conn:  # one run out, one voided
        conn.execute(sa.text("UPDATE coupons SET valid_until = :t WHERE code = 'ABCD-EFGH-JKMN'"),
                     {"t": datetime(2026, 3, 1, tzinfo=UTC)})  # fmt: skip
    voided = coupons.issue(uow, template_code="CAMP", member_ids=[shop["bob"]], key="void")
    with uow.engine.begin() as conn:
        conn.execute(sa.text("UPDATE coupons SET status = 'void' WHERE code = :c"),
                     {"c": voided.issued[0].code})  # fmt: skip

    export(uow.engine, "members", tmp_path / "members.csv")
    assert export(uow.engine, "coupons", tmp_path / "coupons.parquet") == 2
    url = f"sqlite:///{tmp_path / 'other.sqlite'}"
    migrate(url)
    other = UnitOfWork(make_engine(Settings(database_url=url)))
    try:
        coupons.put_template(other, code="OLD100", template=CouponTemplate(
            name="OLD100", kind="amount_off", amount=Decimal(100)))  # fmt: skip
        coupons.put_template(other, code="CAMP", template=camp)
        import_file(other, kind="members", path=tmp_path / "members.csv")
        try:
            moved = import_file(other, kind="coupons", path=tmp_path / "coupons.parquet")
        except ImportRefused as exc:
            raise AssertionError(exc.errors) from None
        assert (moved.created, moved.rejected_rows) == (2, 0)
        assert import_file(other, kind="coupons", path=tmp_path / "coupons.parquet").unchanged == 2

        def held(u: UnitOfWork, phone: str) -> list[tuple[str, Any, Any]]:
            with u.read() as session:
                mid = session.scalar(sa.text(
                    "SELECT member_id FROM member_identifiers WHERE value = :v"), {"v": phone})  # fmt: skip
            return sorted((c.code, c.valid_until, c.status) for c in
                          coupons.member_coupons(u, member_id=mid) if c.uses == 0
                          and c.status == "active" and (c.valid_until is None or c.valid_until > NOW))  # fmt: skip

        assert held(other, "+886912000001") == held(uow, "+886912000001")
        assert len(held(other, "+886912000001")) == 2
        assert held(other, "+886912000002") == []
        with other.read() as session:
            assert coupons.check_counters(session) == []
    finally:
        other.engine.dispose()
