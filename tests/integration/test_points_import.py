"""Opening balances (`omo import points`, SQLite + PostgreSQL): the points members bring from the
programme before, one lot each with its own expiry, so that what expires when carries over and
redemption takes the soonest first; a bad row refuses the file and names itself; a second
import changes nothing; a reference imported with other content is refused."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from openpyxl import Workbook
from typer.testing import CliRunner

from omo.cli import app
from omo.db import UnitOfWork
from omo.points import service as points
from omo.points.rules import PointsRules
from omo.points.schemas import PointsChange
from omo.settings import get_settings
from omo.shared import clock
from omo.transfer.importer import ImportRefused, import_file
from tests.conftest import dump
from tests.factories import csv_file, enrol

NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Taipei
HEADER = ["reference", "points", "member_id", "phone", "email", "earned_at", "available_at",
          "expires_at", "reason"]  # fmt: skip


@pytest.fixture
def people(uow: UnitOfWork) -> dict[str, int]:
    clock.set_clock(lambda: NOW)
    points.set_programme(uow, rules=PointsRules(expiry="rolling", expiry_months=12), actor="t")
    ids = {
        "alice": enrol(uow, phone="0912-000-001").member.id,
        "bob": enrol(uow, phone="0912-000-002").member.id,
        "carl": enrol(uow, identifiers=[{"kind": "email", "value": "carl@example.com"}]).member.id,
    }
    return ids


def write(path: Path, rows: list[dict[str, Any]], header: list[str] = HEADER) -> Path:
    return csv_file(path, header, rows)


def good_rows(people: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {"reference": "L1", "points": 300, "phone": "0912000001", "expires_at": "2026-06-30"},
        {"reference": "L2", "points": 200, "phone": "0912-000-001", "earned_at": "2025-09-15"},
        {"reference": "L3", "points": 500, "member_id": people["bob"],
         "available_at": "2026-03-10", "reason": "migrated from the old CRM"},
        {"reference": "L4", "points": 100, "email": "CARL@example.com",
         "expires_at": "2027-01-01T00:00:00+08:00"},
    ]  # fmt: skip


def taipei(y: int, m: int, d: int) -> datetime:
    """Midnight at the start of that day in Taipei."""
    return datetime(y, m, d, tzinfo=UTC) - (datetime(2000, 1, 1, 8) - datetime(2000, 1, 1))


def test_opening_balances_become_lots_that_keep_their_expiry(
    people: dict[str, int], uow: UnitOfWork, tmp_path: Path
) -> None:
    report = import_file(uow, kind="points", path=write(tmp_path / "p.csv", good_rows(people)))
    assert (report.created, report.unchanged, report.rejected_rows) == (4, 0, 0)

    alice = points.summary(uow, member_id=people["alice"])
    assert (alice.available, alice.pending) == (500, 0)
    # a date alone is through that day; no expiry: the programme's, from when they were earned
    assert [(e.expires_at, e.points) for e in alice.expiring] == [
        (taipei(2026, 7, 1), 300), (taipei(2026, 9, 16), 200)]  # fmt: skip
    assert {(h.kind, h.reason) for h in alice.history} == {
        ("adjust", "opening balance"), ("adjust", "opening balance (earned 2025-09-15)")}  # fmt: skip
    bob = points.summary(uow, member_id=people["bob"])
    assert (bob.available, bob.pending) == (0, 500)  # pending until the 10th, as it was there
    assert bob.history[0].reason == "migrated from the old CRM"
    carl = points.summary(uow, member_id=people["carl"])
    assert (carl.available, [e.expires_at for e in carl.expiring]) == (100, [taipei(2027, 1, 1)])

    # redemption takes the soonest to expire first, across the imported lots
    spend = PointsChange(points=350, idempotency_key="till-1")
    after = points.redeem(uow, member_id=people["alice"], change=spend, actor="t")
    assert [(e.expires_at, e.points) for e in after.expiring] == [(taipei(2026, 9, 16), 150)]
    # and the lot that was not spent expires on its day
    clock.set_clock(lambda: taipei(2026, 9, 16))
    points.expire_due(uow)
    assert points.summary(uow, member_id=people["alice"]).available == 0
    with uow.read() as session:
        assert points.check_ledger(session) == []
        # an opening balance is not points earned: no tier counts it
        kinds = set(session.scalars(sa.text("SELECT DISTINCT kind FROM points_entries")))
    assert kinds == {"adjust", "redeem", "expire"}


def test_a_second_import_changes_nothing_and_other_content_is_refused(
    people: dict[str, int], uow: UnitOfWork, engine: sa.Engine, tmp_path: Path
) -> None:
    path = write(tmp_path / "p.csv", good_rows(people))
    import_file(uow, kind="points", path=path)
    before = dump(engine)
    again = import_file(uow, kind="points", path=path)
    assert (again.created, again.unchanged) == (0, 4)
    assert dump(engine) == before
    clock.set_clock(lambda: taipei(2026, 8, 1))  # L1 has expired since: still nothing to do
    assert import_file(uow, kind="points", path=path).unchanged == 4
    assert dump(engine) == before
    clock.set_clock(lambda: NOW)
    changed = good_rows(people)
    changed[2]["points"] = 501
    changed[3]["email"] = ""
    changed[3]["phone"] = "0912-000-001"  # carl's reference, now for alice
    with pytest.raises(ImportRefused) as refused:
        import_file(uow, kind="points", path=write(tmp_path / "q.csv", changed))
    assert [(e.row, e.column) for e in refused.value.errors] == [(4, "reference"), (5, "reference")]
    assert "already imported with other content" in refused.value.errors[0].message
    assert dump(engine) == before


def test_bad_rows_refuse_the_file_each_named(
    people: dict[str, int], uow: UnitOfWork, engine: sa.Engine, tmp_path: Path
) -> None:
    before = dump(engine)
    rows = [
        {"reference": "ok", "points": 10, "phone": "0912-000-001"},
        {"reference": "n1", "points": 10, "phone": "0912-999-999"},
        {"reference": "n2", "points": 10, "phone": "0912-000-001", "email": "carl@example.com"},
        {"reference": "n3", "points": 10, "member_id": 999_999},
        {"reference": "n4", "points": 0, "phone": "0912-000-001"},
        {"reference": "n5", "points": "lots", "phone": "0912-000-001"},
        {"reference": "n6", "points": 10, "phone": "0912-000-001", "expires_at": "2026-01-31"},
        {"reference": "n7", "points": 10, "phone": "0912-000-001", "earned_at": "2024-12-31"},
        {"reference": "n8", "points": 10, "phone": "0912-000-001", "earned_at": "2026-04-01"},
        {"reference": "ok", "points": 10, "phone": "0912-000-002"},
        {"reference": "n9", "points": 10},
        {"reference": "n10", "points": 10, "phone": "0912-000-001", "earned_at": "2026-02-01",
         "expires_at": "2026-01-15T00:00:00+08:00"},
        {"reference": "a b", "points": 10, "phone": "0912-000-001"},
        {"reference": "n12", "points": 10, "phone": "not a phone"},
    ]  # fmt: skip
    with pytest.raises(ImportRefused) as refused:
        import_file(uow, kind="points", path=write(tmp_path / "bad.csv", rows))
    got = {(e.row, e.column): e.message for e in refused.value.errors}
    assert set(got) == {
        (3, "phone"), (4, "phone"), (5, "member_id"), (6, "points"), (7, "points"),
        (8, "expires_at"), (9, "earned_at"), (10, "earned_at"), (11, "reference"),
        (12, "member_id"), (13, "expires_at"), (14, "reference"), (15, "phone"),
    }  # fmt: skip
    assert got[3, "phone"] == "names no member (import the members first)"
    assert got[4, "phone"] == f"name more than one member: {people['alice']}, {people['carl']}"
    assert got[5, "member_id"] == "no member 999999"
    assert got[8, "expires_at"] == "these points expired at 2026-02-01T00:00+08:00"
    assert got[9, "earned_at"].startswith("by the programme's expiry these points expired at "
                                          "2026-01-01T00:00+08:00")  # fmt: skip
    assert got[10, "earned_at"] == "lies in the future"
    assert got[11, "reference"] == "repeats row 2"
    assert got[12, "member_id"] == "give member_id or an identifier of the member"
    assert got[13, "expires_at"] == "must come after earned_at"
    assert dump(engine) == before

    # with a quarantine the good row lands and the bad ones go to the file, with their reasons
    report = import_file(uow, kind="points", path=tmp_path / "bad.csv",
                         quarantine=tmp_path / "rejects.csv")  # fmt: skip
    assert (report.created, report.rejected_rows) == (1, 13)
    with (tmp_path / "rejects.csv").open(encoding="utf-8-sig") as f:
        rejects = list(csv.DictReader(f))
    assert [r["_row"] for r in rejects] == [str(n) for n in range(3, 16)]
    assert points.summary(uow, member_id=people["alice"]).available == 10


def test_a_merged_member_and_a_spreadsheet_date(
    people: dict[str, int], uow: UnitOfWork, tmp_path: Path
) -> None:
    """A member_id merged since the old system's export is credited to whom it was merged into;
    a spreadsheet's date cell for expires_at is through that day."""
    from omo.identity import service as identity

    identity.merge_use_case(uow, survivor_id=people["alice"], absorbed_id=people["bob"],
                            note=None, actor="t")  # fmt: skip
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["reference", "points", "member_id", "expires_at"])
    sheet.append(["X1", 40, people["bob"], date(2026, 12, 31)])
    book.save(tmp_path / "p.xlsx")
    assert import_file(uow, kind="points", path=tmp_path / "p.xlsx").created == 1
    alice = points.summary(uow, member_id=people["alice"])
    assert [(e.expires_at, e.points) for e in alice.expiring] == [(taipei(2027, 1, 1), 40)]


def test_the_command(people: dict[str, int], db_url: str, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("OMO_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        path = write(tmp_path / "p.csv", good_rows(people))
        done = CliRunner().invoke(app, ["import", "points", str(path)])
        assert done.exit_code == 0, done.output
        assert "created=4" in done.output
        unknown = write(tmp_path / "u.csv", [{"reference": "x", "points": 1, "store": "S1"}],
                        header=["reference", "points", "store"])  # fmt: skip
        refused = CliRunner().invoke(app, ["import", "points", str(unknown)])
        assert refused.exit_code != 0 and "unknown column(s) for points: store" in refused.output
    finally:
        get_settings.cache_clear()


def test_points_move_to_another_database_with_their_expiry(
    people: dict[str, int], uow: UnitOfWork, tmp_path: Path
) -> None:
    """`omo export points` writes every lot with points left as an opening balance: imported
    into another database (members first), each member holds the same, expiring when it did,
    pending until it was; imported again, it changes nothing."""
    from omo.db import make_engine
    from omo.privacy import service as privacy
    from omo.settings import Settings
    from omo.transfer.exporter import export
    from tests.conftest import migrate

    import_file(uow, kind="points", path=write(tmp_path / "p.csv", good_rows(people)))
    points.redeem(uow, member_id=people["alice"], actor="t",
                  change=PointsChange(points=350, idempotency_key="till-1"))  # fmt: skip
    dora = enrol(uow, phone="0912-000-009").member.id
    points.adjust(uow, member_id=dora, actor="t",
                  change=PointsChange(points=70, idempotency_key="goodwill", reason="sorry"))  # fmt: skip
    privacy.erase(uow, member_id=dora, actor="dpo")  # nothing left to name her by: not moved
    export(uow.engine, "members", tmp_path / "members.csv")
    assert export(uow.engine, "points", tmp_path / "lots.parquet") == 3  # L1 is spent
    url = f"sqlite:///{tmp_path / 'other.sqlite'}"
    migrate(url)
    other = UnitOfWork(make_engine(Settings(database_url=url)))
    try:
        import_file(other, kind="members", path=tmp_path / "members.csv")
        moved = import_file(other, kind="points", path=tmp_path / "lots.parquet")
        assert (moved.created, moved.rejected_rows) == (3, 0)
        assert import_file(other, kind="points", path=tmp_path / "lots.parquet").unchanged == 3

        def holdings(u: UnitOfWork, phone_or_mail: str) -> Any:
            with u.read() as session:
                mid = session.scalar(sa.text(
                    "SELECT member_id FROM member_identifiers WHERE value = :v"),
                    {"v": phone_or_mail})  # fmt: skip
            s = points.summary(u, member_id=mid)
            return s.available, s.pending, [(e.expires_at, e.points) for e in s.expiring]

        for who in ("+886912000001", "+886912000002", "carl@example.com"):
            assert holdings(other, who) == holdings(uow, who), who
        assert holdings(other, "+886912000001")[2] == [(taipei(2026, 9, 16), 150)]
    finally:
        other.engine.dispose()
