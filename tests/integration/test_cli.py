"""The command line: demo, import and export as a user runs them (SQLite + PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from omo.cli import app
from omo.db import UnitOfWork
from omo.settings import get_settings


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("OMO_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_demo_loads_then_refuses_a_second_load(cli: CliRunner, tmp_path: Path) -> None:
    args = ["demo", "--people", "60", "--months", "6", "--until", "2026-06-01", "--no-serve"]
    first = cli.invoke(app, [*args, "--truth", str(tmp_path / "truth")])
    assert first.exit_code == 0, first.output
    summary = first.output.strip().splitlines()[-1]
    assert summary.startswith("demo people=60 seed=7 months=6 until=2026-06-01 | members=")
    assert (tmp_path / "truth" / "records.parquet").is_file()
    again = cli.invoke(app, [*args, "--truth", str(tmp_path / "t2")])
    assert again.exit_code == 2
    assert "empty database" in again.output
    bad = cli.invoke(app, ["demo", "--until", "someday", "--no-serve"])
    assert bad.exit_code == 2
    slow = cli.invoke(app, ["demo", "--purchases-per-year", "0", "--no-serve"])
    assert slow.exit_code == 2 and "purchases-per-year" in slow.output


def test_import_refuses_with_rows_named_and_export_writes(
    cli: CliRunner, tmp_path: Path, engine: sa.Engine
) -> None:
    good = tmp_path / "stores.csv"
    good.write_text("code,name,region\nTPE-101,信義店,台北市\n", encoding="utf-8")
    ok = cli.invoke(app, ["import", "stores", str(good)])
    assert ok.exit_code == 0, ok.output
    assert "created=1" in ok.output
    bad = tmp_path / "products.csv"
    bad.write_text("sku,name,category,price\nA,帽子,配件,-1\nB,,配件,10\n", encoding="utf-8")
    refused = cli.invoke(app, ["import", "products", str(bad)])
    assert refused.exit_code == 2
    assert "row 2, column price" in refused.output
    assert "row 3, column name" in refused.output
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM products")).scalar() == 0
    out = tmp_path / "stores.parquet"
    exported = cli.invoke(app, ["export", "stores", str(out)])
    assert exported.exit_code == 0, exported.output
    assert out.is_file()
    assert cli.invoke(app, ["export", "stores", str(tmp_path / "x.txt")]).exit_code == 2


def test_refresh_scores_the_demo_and_refuses_bad_options(
    cli: CliRunner, tmp_path: Path, engine: sa.Engine
) -> None:
    args = ["demo", "--people", "300", "--months", "12", "--until", "2026-06-01", "--no-serve"]
    loaded = cli.invoke(app, [*args, "--truth", str(tmp_path / "truth")])
    assert loaded.exit_code == 0, loaded.output
    done = cli.invoke(app, ["refresh", "--engine", "duckdb", "--as-of", "2026-06-01"])
    assert done.exit_code == 0, done.output
    line = done.output.strip().splitlines()[-1]
    assert line.startswith("run 1: ") and "segments {" in line
    with engine.connect() as conn:
        scored = conn.execute(sa.text("SELECT count(*) FROM member_scores")).scalar()
        members = conn.execute(sa.text("SELECT count(*) FROM members")).scalar()
    assert scored == members and f"{members} members" in line
    pareto = cli.invoke(app, ["refresh", "--as-of", "2026-06-01", "--model", "pareto"])
    assert pareto.exit_code == 0, pareto.output
    with engine.connect() as conn:
        models = conn.execute(sa.text("SELECT models FROM analytics_runs WHERE id = 2")).scalar()
    assert "pareto" in str(models) and "bgnbd" not in str(models)
    bad_model = cli.invoke(app, ["refresh", "--model", "lifetimes"])
    assert bad_model.exit_code == 2 and "bgnbd or pareto" in bad_model.output
    bad_engine = cli.invoke(app, ["refresh", "--engine", "pandas"])
    assert bad_engine.exit_code == 2 and "duckdb or spark" in bad_engine.output
    bad_day = cli.invoke(app, ["refresh", "--as-of", "yesterday"])
    assert bad_day.exit_code == 2 and "not a date" in bad_day.output
    far = cli.invoke(app, ["refresh", "--as-of", "0001-01-01"])
    assert far.exit_code == 2 and "as_of must lie between 1970-01-01" in far.output
    with engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT count(*) FROM analytics_runs")).scalar()
    assert runs == 2


def test_user_create_and_journey_commands(cli: CliRunner, uow: UnitOfWork) -> None:
    from omo.users import service as users

    args = ["user", "create", "--username", "admin", "--role", "admin", "--password-stdin"]
    made = cli.invoke(app, args, input="a long enough password\n")
    assert made.exit_code == 0, made.output
    again = cli.invoke(app, args, input="a long enough password\n")
    assert again.exit_code == 2 and "exists" in again.output
    assert cli.invoke(app, [*args, "--if-missing"], input="whatever else\n").exit_code == 0
    short = cli.invoke(app, [*args[:3], "x", *args[4:]], input="short\n")
    assert short.exit_code == 2 and "10 characters" in short.output
    assert users.authenticate(uow, username="admin", password="a long enough password")
    seeded = cli.invoke(app, ["journeys", "seed"])
    assert seeded.exit_code == 0 and "9 journeys" in seeded.output and "(off)" in seeded.output
    ran = cli.invoke(app, ["jobs", "run"])
    assert ran.exit_code == 0 and '"advanced":0' in ran.output


def test_import_of_orders_validates_on_every_core(db_url: str, tmp_path: Path) -> None:
    """As a user runs it: the command's progress bar must not start a thread, for the import
    forks only from a process with one."""
    import os
    import subprocess
    import sys

    from omo.shared import forked

    if forked.cores() < 2:
        assert os.environ.get("CI") != "true", "CI machines have two cores"
        pytest.skip("one core: nothing to fork for")
    omo = [str(Path(sys.executable).parent / "omo")]
    env = {**os.environ, "OMO_DATABASE_URL": db_url}
    stores = tmp_path / "stores.csv"
    stores.write_text("code,name,region\nTPE-101,信義店,台北市\n", encoding="utf-8")
    subprocess.run([*omo, "import", "stores", str(stores)], env=env, check=True)
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "channel,external_id,ordered_at,store,sku,quantity,unit_price\n"
        + "".join(f"pos,P-{n},2026-01-05 10:00,TPE-101,SKU-1,1,100\n" for n in range(2_500)),
        encoding="utf-8",
    )
    done = subprocess.run(
        [*omo, "import", "orders", str(orders)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "created=2500" in done.stdout
    assert "validated on 2 cores" in done.stdout


def test_a_wrong_setting_is_said_by_its_name_and_nothing_runs(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch, engine: sa.Engine
) -> None:
    """OMO_PRICE_UNIT=0.005 (a till cannot take half a cent), a negative rate limit: each is
    named with what is wrong, the command exits 2 and writes nothing; `--help` still works."""
    from tests.conftest import dump

    before = dump(engine)
    monkeypatch.setenv("OMO_PRICE_UNIT", "0.005")
    monkeypatch.setenv("OMO_RATE_LIMIT_PER_S", "-1")
    get_settings.cache_clear()
    bad = cli.invoke(app, ["apikey", "create", "--name", "x"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert "OMO_PRICE_UNIT=0.005: money has at most two decimal places" in bad.output
    assert "OMO_RATE_LIMIT_PER_S=-1: Input should be greater than 0" in bad.output
    assert dump(engine) == before
    assert cli.invoke(app, ["--help"]).exit_code == 0


def test_reconcile_names_what_the_till_has_and_omo_not(
    cli: CliRunner, tmp_path: Path, uow: UnitOfWork
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from omo.shared import clock
    from tests import factories as f

    noon = datetime(2026, 12, 6, 12, 0, tzinfo=ZoneInfo("Asia/Taipei"))
    clock.set_clock(lambda: datetime(2026, 12, 7, 9, 0, tzinfo=ZoneInfo("Asia/Taipei")))
    f.store(uow, "TPE-101")
    for receipt, price in (("POS-1", "1030"), ("POS-2", "500")):
        f.post_order(uow, channel="pos", external_id=receipt, store="TPE-101",
                     ordered_at=noon.isoformat(),
                     lines=[{"sku": "X", "quantity": 1, "unit_price": price}])  # fmt: skip
    journal = tmp_path / "journal.csv"
    journal.write_text('單號,金額\nPOS-1,"1,030"\nPOS-2,500\n', encoding="utf-8-sig")
    ok = cli.invoke(app, ["reconcile", "TPE-101", str(journal)])  # yesterday: the 6th
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("TPE-101 2026-12-06 pos: till 2 receipts 1530.00, OMO 2 1530.00")
    assert "closed" not in ok.output
    journal.write_text("POS-1\t1030\nPOS-9\t450\n", encoding="big5")
    off = cli.invoke(app, ["reconcile", "TPE-101", str(journal), "--day", "2026-12-06",
                           "--encoding", "big5"])  # fmt: skip
    assert off.exit_code == 1, off.output
    assert "missing (send again): 1: POS-9" in off.output
    assert "not in the journal: 1: POS-2 (500.00 completed)" in off.output
    journal.write_text("POS-1,1030\nPOS-2,500\nR-1,-200\n", encoding="utf-8")
    slips = cli.invoke(app, ["reconcile", "TPE-101", str(journal)])
    assert slips.exit_code == 1, slips.output  # the sales balance, the slip does not
    assert "returns: till 1 slips 200.00, OMO 0 0.00; matched 0" in slips.output
    assert "returns never refunded in OMO (refund with the slip's number): 1: R-1" in slips.output
    # a nightly job closes the day once it balances, and not before
    kept = cli.invoke(app, ["reconcile", "TPE-101", str(journal), "--close"])
    assert kept.exit_code == 1 and "closed" not in kept.output, kept.output
    journal.write_text("POS-1,1030\nPOS-2,500\n", encoding="utf-8")
    shut = cli.invoke(app, ["reconcile", "TPE-101", str(journal), "--close"])
    assert shut.exit_code == 0, shut.output
    assert "closed at 2026-12-07T01:00:00+00:00 by cli" in shut.output
    again = cli.invoke(app, ["reconcile", "TPE-101", str(journal), "--close"])
    assert "closed before at 2026-12-07T01:00:00+00:00" in again.output
    for args, said in (
        (["reconcile", "NOPE", str(journal)], "no store"),
        (["reconcile", "TPE-101", str(tmp_path / "none.csv")], "No such file"),
        (["reconcile", "TPE-101", str(journal), "--day", "2026-12-08"], "to today"),
        (["reconcile", "TPE-101", str(journal), "--channel", "fax"], "fax"),
        (["reconcile", "TPE-101", str(journal), "--encoding", "big6"], "big6"),  # no such codec
    ):
        bad = cli.invoke(app, args)
        assert bad.exit_code == 2 and said in bad.output, (args, bad.output)
    clock.reset_clock()
