"""The `omo` command line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from omo.settings import get_settings


class _Commands(TyperGroup):
    """Every command: a database that cannot be opened, or is not at this code's schema, is
    said in one line (exit 2) rather than by a traceback from the first statement."""

    def invoke(self, ctx: Any) -> Any:
        from sqlalchemy.exc import DBAPIError

        try:
            return super().invoke(ctx)
        except DBAPIError:
            said = _database_trouble(migrating=ctx.invoked_subcommand == "db")
            if said is None:
                raise
            typer.echo(f"error: {said}", err=True)
            raise typer.Exit(2) from None


def _database_trouble(*, migrating: bool) -> str | None:
    """After a command's database error: what is wrong with the database itself, found by
    connecting again — it cannot be opened, or (outside `omo db`) its schema is not the one
    this code needs. None when neither: the error was the command's, and is raised as it is."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import DBAPIError

    from omo.ops.schema import database_schema, schema_advice

    url = get_settings().database_url
    engine = create_engine(url)
    try:
        current = database_schema(engine)
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        return f"cannot open the database {_safe(url)}: {reason}"
    finally:
        engine.dispose()
    advice = None if migrating else schema_advice(current)
    return f"the database {_safe(url)} {advice}" if advice else None


app = typer.Typer(
    help="OMO: omnichannel membership and loyalty.", no_args_is_help=True, cls=_Commands
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
key_app = typer.Typer(help="API keys for integrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
jobs_app = typer.Typer(help="Scheduled work: journeys and message delivery.", no_args_is_help=True)
journeys_app = typer.Typer(help="Lifecycle journeys.", no_args_is_help=True)
app.add_typer(key_app, name="apikey")
app.add_typer(jobs_app, name="jobs")
app.add_typer(journeys_app, name="journeys")
user_app = typer.Typer(help="Users of the admin UI and the POS page.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@app.callback()
def _settings_read() -> None:
    """Every command reads the OMO_* settings first: one that is wrong is said by its name and
    nothing runs (not a traceback from the first command that reads it)."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        get_settings()
    except ValidationError as exc:
        for err in exc.errors():
            name = "OMO_" + "_".join(str(part) for part in err["loc"]).upper()
            said = str(err["msg"]).removeprefix("Value error, ")
            typer.echo(f"error: {name}={_shown(name, str(err['input']))}: {said}", err=True)
        raise typer.Exit(2) from None
    except SettingsError as exc:  # a value that had to be JSON and is not
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"OMO_{field.group(1).upper()}" if field else "an OMO_ setting"
        typer.echo(f"error: {name} is not JSON ({exc.__cause__ or exc})", err=True)
        raise typer.Exit(2) from None


def _shown(name: str, value: str) -> str:
    """A refused setting's value as it may be printed: a URL's password and secrets hidden."""
    if any(word in name for word in ("PASSWORD", "TOKEN", "SECRET", "PRIVATE_KEY")):
        return "(hidden)"
    return re.sub(r"(://[^/:@]*:)[^/]*@", r"\1***@", value)


def alembic_config(database_url: str) -> object:
    from alembic.config import Config

    root = Path(__file__).resolve().parent
    cfg = Config()
    cfg.set_main_option("script_location", str(root / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url)
    return cfg


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the database (OMO_DATABASE_URL) to the newest schema."""
    from alembic import command

    url = get_settings().database_url
    command.upgrade(alembic_config(url), revision)  # type: ignore[arg-type]
    typer.echo(f"database at {revision}: {_safe(url)}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port", min=0, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="processes (PostgreSQL only)")] = 1,
    jobs_every: Annotated[
        int, typer.Option(help="seconds between in-process scheduler passes; 0: none", min=0)
    ] = 60,
) -> None:
    """Serve the API (and, as they land, the admin UI) over HTTP."""
    import os

    import uvicorn

    if workers < 1:
        raise typer.BadParameter("at least 1", param_hint="--workers")
    if workers > 1 and get_settings().database_url.startswith("sqlite"):
        # one SQLite file has one writer; several processes would only queue on its file lock
        raise typer.BadParameter("several processes need PostgreSQL", param_hint="--workers")

    # the embedded default runs journeys and delivery in process; with several workers (or a
    # separate `omo jobs worker`) pass 0
    os.environ.setdefault("OMO_JOBS_EVERY_S", str(jobs_every if workers == 1 else 0))
    os.environ.setdefault("OMO_GC_FREEZE", "1")
    from omo.ops.logs import log_config

    typer.echo(f"OMO on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    if workers == 1:
        uvicorn.run(
            "omo.app:create_app", factory=True, host=host, port=port, log_config=log_config()
        )
        return
    import socket

    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "omo.app:create_app", factory=True, host=host, port=port, workers=workers,
        log_config=log_config(),
    )  # fmt: skip
    # uvicorn's shared socket for its workers is made with protocol 0, so asyncio never turns
    # Nagle off on the connections it accepts: every answer waited ~40 ms for a delayed ACK.
    # Accepted sockets inherit TCP_NODELAY from the listening one.
    sock = config.bind_socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    Multiprocess(config, sockets=[sock]).run()


@app.command()
def demo(
    people: Annotated[int, typer.Option(min=1, help="true people in the world")] = 5_000,
    seed: Annotated[int, typer.Option(help="random seed; same seed, same world")] = 7,
    months: Annotated[int, typer.Option(min=1, max=120, help="months of history")] = 24,
    until: Annotated[
        str | None, typer.Option(help="last day + 1 of the history, YYYY-MM-DD (default today)")
    ] = None,
    truth: Annotated[Path, typer.Option(help="where the ground truth goes")] = Path(
        "var/demo-truth"
    ),
    purchases_per_year: Annotated[
        float | None,
        typer.Option(
            min=0.1, max=365, help="mean purchase rate of a person while active (default ≈ 2.5)"
        ),
    ] = None,
    trade_days: Annotated[
        int,
        typer.Option(
            min=0,
            max=365,
            help="trade the history's last N days at the tills (points, coupons, referrals, "
            "returns) instead of importing them",
        ),
    ] = 0,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="only build and load")] = False,
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
) -> None:
    """Generate a Taiwanese omnichannel retail world, load it, then serve it."""
    from datetime import UTC, date, datetime, timedelta

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from omo.db import make_engine
    from omo.demo.load import DemoSpec, load_demo
    from omo.shared.errors import DomainError

    try:
        end = date.fromisoformat(until) if until else None
    except ValueError:
        typer.echo(f"error: --until: not a date (YYYY-MM-DD): {until!r}", err=True)
        raise typer.Exit(2) from None
    last = DemoSpec(until=end).end_day()
    if trade_days and DemoSpec(until=last - timedelta(days=trade_days)).world_end() >= min(
        datetime.now(UTC), DemoSpec(until=last).world_end()
    ):
        typer.echo("error: --trade-days: the traded days must be past (see --until)", err=True)
        raise typer.Exit(2)
    spec = DemoSpec(
        people=people, seed=seed, months=months, purchases_per_year=purchases_per_year,
        until=last - timedelta(days=trade_days),
    )  # fmt: skip
    settings = get_settings()
    engine = make_engine(settings)
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("people", total=people)
        try:
            line = load_demo(engine, spec, truth, lambda n: bar.advance(task, n))
        except DomainError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(2) from None
    if trade_days:
        from omo.db import UnitOfWork
        from omo.demo.trading import trade
        from omo.shared import clock

        with Progress(*columns, transient=True) as bar:
            bar.add_task(f"trading {trade_days} days at the tills", total=None)
            traded = trade(
                UnitOfWork(engine), start=spec.world_end(), seed=seed,
                end=min(clock.now(), DemoSpec(until=last).world_end()),
                currency=settings.currency, region=settings.default_region,
                unit=settings.price_unit,
            )  # fmt: skip
        line += "\n" + traded.line()
    engine.dispose()
    typer.echo(f"ground truth: {truth}/")
    typer.echo(line)
    if not no_serve:
        serve(host=host, port=port, workers=1)


@app.command("import")
def import_(
    kind: Annotated[
        str,
        typer.Argument(
            help="stores | products | members | orders | events | points | tiers | coupons"
        ),
    ],
    file: Annotated[Path, typer.Argument(help="CSV, XLSX, JSONL or Parquet")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv|xlsx|jsonl|parquet (default: suffix)")
    ] = None,
    shape: Annotated[
        str, typer.Option(help="omo (docs/import.md) | shopify | shopee (orders only)")
    ] = "omo",
    quarantine: Annotated[
        Path | None, typer.Option(help="land the good rows; write the bad ones here (CSV)")
    ] = None,
    timezone: Annotated[str, typer.Option(help="zone of times written without one")] = (
        "Asia/Taipei"
    ),
    encoding: Annotated[str | None, typer.Option(help="CSV text encoding")] = None,
) -> None:
    """Import a file; nothing is committed before it is all valid: a bad row refuses the file
    (or is quarantined)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from omo.db import UnitOfWork, make_engine
    from omo.transfer.importer import ImportRefused, import_file

    settings = get_settings()
    engine = make_engine(settings)
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        # redrawn as rows are written, not by rich's refresh thread: the import forks its
        # validation onto the other cores only from a process with one thread
        with Progress(*columns, transient=True, auto_refresh=False) as bar:
            task = bar.add_task(f"import {kind}", total=None)

            def advance(n: int) -> None:
                bar.advance(task, n)
                bar.refresh()

            report = import_file(
                UnitOfWork(engine), kind=kind, path=file, fmt=fmt, shape=shape,
                quarantine=quarantine, timezone=timezone, region=settings.default_region,
                currency=settings.currency, encoding=encoding, progress=advance,
            )  # fmt: skip
    except ImportRefused as exc:
        typer.echo(f"refused: {exc.message}", err=True)
        for error in exc.errors[:200]:
            typer.echo(f"  {error}", err=True)
        if len(exc.errors) > 200:
            typer.echo(f"  … and {len(exc.errors) - 200} more", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    if report.rejected_rows:
        typer.echo(f"{report.rejected_rows} bad row(s) written to {quarantine}", err=True)
    typer.echo(report.summary())


@app.command("export")
def export_(
    kind: Annotated[
        str,
        typer.Argument(
            help="stores | products | members | orders | events | points | tiers | coupons"
        ),
    ],
    file: Annotated[Path, typer.Argument(help="a .parquet or .csv path")],
) -> None:
    """Export everything of a kind, in the columns `omo import` reads back."""
    import time

    from omo.db import make_engine
    from omo.transfer.exporter import export
    from omo.transfer.formats import UnreadableFile

    engine = make_engine(get_settings())
    started = time.perf_counter()
    try:
        n = export(engine, kind, file)
    except UnreadableFile as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    typer.echo(f"exported {n} {kind} rows to {file} in {time.perf_counter() - started:.1f}s")


@app.command()
def check() -> None:
    """Reconcile every ledger, coupon counter and stat against what lies beneath it; exit 1 and
    list the differences if there are any."""
    from omo.commerce import service as commerce
    from omo.coupons import service as coupons
    from omo.db import UnitOfWork, make_engine
    from omo.points import service as points
    from omo.referrals import service as referrals
    from omo.rewards import service as rewards

    engine = make_engine(get_settings())
    with UnitOfWork(engine).read() as session:
        found = {
            "points ledger": points.check_ledger(session),
            "coupon counters": coupons.check_counters(session),
            "orders and stats": commerce.check_orders_and_stats(session),
            "reward redemptions": rewards.check_redemptions(session),
            "referrals": referrals.check_referrals(session),
        }
    engine.dispose()
    for name, problems in found.items():
        typer.echo(f"{name}: {len(problems)} difference(s)")
        for problem in problems[:50]:
            typer.echo(f"  {problem}")
    if any(found.values()):
        raise typer.Exit(1)


@app.command()
def reconcile(
    store: Annotated[str, typer.Argument(help="the store's code")],
    journal: Annotated[
        Path, typer.Argument(help="the till's receipts: a number and a total a line (CSV, TSV)")
    ],
    day: Annotated[
        str | None, typer.Option(help="the brand's day, YYYY-MM-DD (default: yesterday)")
    ] = None,
    channel: Annotated[str, typer.Option(help="the channel the till sends as")] = "pos",
    encoding: Annotated[str, typer.Option(help="the file's text encoding")] = "utf-8-sig",
    close: Annotated[
        bool, typer.Option(help="close the day (日結確認) when the journal balances")
    ] = False,
) -> None:
    """Match a till's receipt journal against the store's day in OMO (changes nothing, unless
    --close): exit 0 when every receipt is recorded at its total and nothing else, 1 with what
    differs (the day then stays open), 2 when the journal or the day cannot be read or closed.
    For a nightly job after the tills close."""
    from datetime import timedelta

    from omo.apikeys.service import Principal
    from omo.checkout import dayclose
    from omo.commerce.channels import Channel
    from omo.db import UnitOfWork, make_engine
    from omo.shared.errors import DomainError

    settings = get_settings()
    zone = settings.time_zone
    try:
        text = journal.read_text(encoding=encoding)
        when = dayclose.parse_day(day, zone) if day else dayclose.today(zone) - timedelta(days=1)
        parsed = dayclose.parse_journal(text, Channel(channel))
    except (OSError, LookupError, UnicodeError, ValueError, DomainError) as exc:
        said = exc.message if isinstance(exc, DomainError) else str(exc)
        typer.echo(f"error: {said}", err=True)
        raise typer.Exit(2) from None
    engine = make_engine(settings)
    try:
        uow = UnitOfWork(engine)
        cli = Principal("cli")
        got = dayclose.reconcile(uow, store=store, day=when, time_zone=zone, journal=parsed,
                                 principal=cli)  # fmt: skip
        closed = (
            dayclose.close_day(uow, store=store, day=when, time_zone=zone, principal=cli)
            if close and got.balanced else None
        )  # fmt: skip
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    typer.echo(
        f"{got.store} {got.date} {got.channel}: till {got.till_receipts} receipts "
        f"{got.till_total}, OMO {got.recorded} {got.recorded_total}; matched {got.matched}"
        + ("" if got.complete else " (the day is not over)")
    )
    findings = [
        ("missing (send again)", got.missing),
        ("elsewhere", [f"{e.external_id} ({e.store or '-'} {e.date}"
                       + (f" {e.channel})" if e.channel != got.channel else ")")
                       for e in got.elsewhere]),
        ("differing", [f"{e.external_id} (till {e.till_total}, OMO {e.recorded_total} "
                       f"{e.status})" for e in got.differing]),
        ("not in the journal", [f"{e.external_id} ({e.total} {e.status})" for e in got.unlisted]),
    ]  # fmt: skip
    if (r := got.returns) is not None:
        typer.echo(f"returns: till {r.till_returns} slips {r.till_refunded}, OMO {r.recorded} "
                   f"{r.recorded_refunded}; matched {r.matched}")  # fmt: skip
        findings += [
            ("returns never refunded in OMO (refund with the slip's number)", r.missing),
            ("returns refunded elsewhere", [f"{x.key} ({x.store or '-'} {x.date})"
                                            for x in r.elsewhere]),
            ("returns differing", [f"{x.key} (till {x.till_amount}, OMO {x.recorded_amount})"
                                   for x in r.differing]),
            ("refunds not in the journal", [f"{x.key} ({x.recorded_amount} on {x.external_id})"
                                            for x in r.unlisted]),
        ]  # fmt: skip
    for name, items in findings:
        if items:
            shown = ", ".join(items[:50]) + (
                f" … and {len(items) - 50} more" if len(items) > 50 else ""
            )
            typer.echo(f"{name}: {len(items)}: {shown}")
    if closed is not None:
        typer.echo(f"{'closed before' if closed.replayed else 'closed'} at "
                   f"{closed.closed_at.isoformat()} by {closed.closed_by}")  # fmt: skip
    if not got.balanced:
        raise typer.Exit(1)


@app.command()
def resolve(
    engine: Annotated[
        str | None, typer.Option(help="duckdb or spark (default OMO_IDENTITY_ENGINE)")
    ] = None,
    auto_merge: Annotated[
        float | None, typer.Option(help="merge pairs at or above this probability")
    ] = None,
    review: Annotated[
        float | None, typer.Option(help="queue pairs at or above this probability for review")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="score and report only")] = False,
    every: Annotated[
        float | None, typer.Option(min=0.01, help="keep running: once every this many hours")
    ] = None,
    merge_batch: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="clusters per write transaction (default OMO_IDENTITY_MERGE_BATCH, 200); "
            "larger is faster but holds SQLite's write lock longer",
        ),
    ] = None,
) -> None:
    """Probabilistic identity resolution: merge members that are one person, queue the unsure."""
    import json
    import time

    from omo.db import UnitOfWork, make_engine
    from omo.identity.resolution import ResolveOptions
    from omo.identity.resolution import resolve as run_resolution
    from omo.shared.errors import DomainError

    settings = get_settings()
    chosen = engine or settings.identity_engine
    if chosen not in ("duckdb", "spark"):
        typer.echo(f"error: --engine: {chosen!r} is not duckdb or spark", err=True)
        raise typer.Exit(2)
    options = ResolveOptions(
        engine=chosen,  # type: ignore[arg-type]
        auto_merge=settings.identity_auto_merge if auto_merge is None else auto_merge,
        review=settings.identity_review if review is None else review,
        spark_master=settings.spark_master,
        dry_run=dry_run,
        merge_batch=settings.identity_merge_batch if merge_batch is None else merge_batch,
    )
    db = make_engine(settings)
    uow = UnitOfWork(db)
    while True:
        try:
            run = run_resolution(uow, options, progress=lambda step: typer.echo(f"  {step} …"))
        except DomainError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            if every is None:
                raise typer.Exit(2) from None
        else:
            before, after = run.kpis["before"], run.kpis["after"]
            typer.echo(
                f"run {run.id}: {run.records} members, {run.pairs_scored} pairs scored, "
                f"{run.merges} merged, {run.reviews_queued} queued for review; "
                f"duplicate-account rate {before['duplicate_rate']:.2%} -> "
                f"{after['duplicate_rate']:.2%}; seconds {json.dumps(run.timings)}"
            )
        if every is None:
            break
        time.sleep(every * 3600)  # a failed run (nothing to learn from yet) tries again later
    db.dispose()


@app.command()
def refresh(
    engine: Annotated[
        str | None, typer.Option(help="duckdb or spark (default OMO_ANALYTICS_ENGINE)")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="score as of this date (YYYY-MM-DD, end of day UTC)")
    ] = None,
    every: Annotated[
        float | None, typer.Option(min=0.01, help="keep running: once every this many hours")
    ] = None,
    model: Annotated[
        str, typer.Option(help="purchases and P(alive): bgnbd (default) or pareto (Pareto/NBD)")
    ] = "bgnbd",
) -> None:
    """Recompute every member's RFM scores, segment, lifecycle, tags and CLV predictions, the
    basket rules, new products and cohorts."""
    import json
    import time
    from datetime import UTC, datetime, timedelta

    from rich.progress import BarColumn, Progress, TimeElapsedColumn

    from omo.analytics.refresh import STEPS, RefreshOptions
    from omo.analytics.refresh import refresh as run_refresh
    from omo.db import UnitOfWork, make_engine
    from omo.shared.errors import DomainError

    settings = get_settings()
    chosen = engine or settings.analytics_engine
    if chosen not in ("duckdb", "spark"):
        typer.echo(f"error: --engine: {chosen!r} is not duckdb or spark", err=True)
        raise typer.Exit(2)
    if model not in ("bgnbd", "pareto"):
        typer.echo(f"error: --model: {model!r} is not bgnbd or pareto", err=True)
        raise typer.Exit(2)
    when = None
    if as_of:
        try:
            day = datetime.fromisoformat(as_of).replace(tzinfo=UTC)
        except ValueError:
            typer.echo(f"error: --as-of: not a date (YYYY-MM-DD): {as_of!r}", err=True)
            raise typer.Exit(2) from None
        when = day + timedelta(days=1) - timedelta(microseconds=1)
    options = RefreshOptions(
        engine=chosen,  # type: ignore[arg-type]
        as_of=when,
        spark_master=settings.spark_master,
        model=model,  # type: ignore[arg-type]
    )
    db = make_engine(settings)
    uow = UnitOfWork(db)
    columns = ("{task.description}", BarColumn(), TimeElapsedColumn())
    while True:
        try:
            with Progress(*columns, transient=True) as bar:
                task = bar.add_task("refresh", total=len(STEPS))

                def step(name: str, task: Any = task) -> None:
                    bar.update(task, description=name, completed=STEPS.index(name))

                run = run_refresh(uow, options, progress=step)
        except DomainError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            if every is None:
                raise typer.Exit(2) from None
        else:
            typer.echo(
                f"run {run.id}: {run.members} members, {run.buyers} buyers; segments "
                f"{json.dumps(run.segments)}; seconds {json.dumps(run.timings)}"
            )
        if every is None:
            break
        time.sleep(every * 3600)
    db.dispose()


@app.command("backup")
def backup_cmd(target: Annotated[Path, typer.Argument(help="the backup file to write")]) -> None:
    """A consistent backup of the database (SQLite online backup, or pg_dump)."""
    from omo.ops.backup import BackupFailed, backup

    try:
        backup(get_settings().database_url, target)
    except BackupFailed as exc:
        typer.echo(f"backup failed: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"backed up to {target} ({target.stat().st_size:,} bytes)")


@app.command("restore")
def restore_cmd(source: Annotated[Path, typer.Argument(help="a file `omo backup` wrote")]) -> None:
    """Restore a backup into the (empty) database named by OMO_DATABASE_URL."""
    from omo.ops.backup import BackupFailed, restore

    try:
        restore(source, get_settings().database_url)
    except BackupFailed as exc:
        typer.echo(f"restore failed: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"restored {source}")


@app.command("expire-points")
def expire_points() -> None:
    """Expire every points lot past its date (run daily; safe to run again)."""
    from omo.db import UnitOfWork, make_engine
    from omo.points import service as points

    engine = make_engine(get_settings())
    expired = points.expire_due(UnitOfWork(engine))
    engine.dispose()
    typer.echo(f"expired {expired} points")


@app.command("backfill-points")
def backfill_points(
    months: Annotated[
        int, typer.Option(min=1, max=120, help="count purchases of the last N months")
    ] = 12,
    since: Annotated[
        str | None, typer.Option(help="count purchases since this day (YYYY-MM-DD, Taipei)")
    ] = None,
) -> None:
    """Points for imported purchases, as if the programme had run then (safe to run again)."""
    from datetime import date as date_
    from datetime import datetime as datetime_
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from omo.checkout.backfill import backfill
    from omo.db import UnitOfWork, make_engine
    from omo.shared import clock
    from omo.shared.errors import DomainError

    taipei = ZoneInfo("Asia/Taipei")
    if since is not None:
        try:
            day = date_.fromisoformat(since)
        except ValueError:
            raise typer.BadParameter("a day as YYYY-MM-DD", param_hint="--since") from None
        start = datetime_(day.year, day.month, day.day, tzinfo=taipei)
    else:
        start = clock.now() - timedelta(days=round(months * 365.25 / 12))
    engine = make_engine(get_settings())
    try:
        done = backfill(UnitOfWork(engine), since=start)
    except DomainError as exc:
        raise typer.BadParameter(exc.message, param_hint="--since") from None
    finally:
        engine.dispose()
    typer.echo(f"{done.orders} orders earned {done.points} points; {done.expired} expired at once")


@app.command("lapse-referrals")
def lapse_referrals() -> None:
    """Mark lapsed the referrals whose friend never bought in time (run daily)."""
    from omo.db import UnitOfWork, make_engine
    from omo.referrals import service as referrals

    engine = make_engine(get_settings())
    lapsed = referrals.lapse_due(UnitOfWork(engine))
    engine.dispose()
    typer.echo(f"{lapsed} referral(s) lapsed")


@app.command("review-tiers")
def review_tiers() -> None:
    """Place members whose review date has come, and rank-based levels (run daily)."""
    from omo.db import UnitOfWork, make_engine
    from omo.tiers import service as tiers

    engine = make_engine(get_settings())
    changes = tiers.review(UnitOfWork(engine))
    engine.dispose()
    typer.echo(f"{changes} tier change(s)")


@app.command("tier-gifts")
def tier_gifts() -> None:
    """Issue each level's monthly gift coupon to its members (run daily; once a month each)."""
    from omo.db import UnitOfWork, make_engine
    from omo.tiers import gifts

    engine = make_engine(get_settings())
    done = gifts.give_monthly(UnitOfWork(engine))
    engine.dispose()
    held = ", ".join(f"{t} {n}" for t, n in sorted(done.holding.items())) or "no gifts"
    refused = ", ".join(f"{r} {n}" for r, n in sorted(done.refused.items()))
    typer.echo(f"{done.period}: {held}" + (f"; refused: {refused}" if refused else ""))


@jobs_app.command("run")
def jobs_run() -> None:
    """One scheduler pass: enter members into journeys, take due steps, deliver messages."""
    _jobs_pass()


@jobs_app.command("worker")
def jobs_worker(
    every: Annotated[float, typer.Option(help="seconds between passes", min=1)] = 60,
) -> None:
    """Run scheduler passes until stopped (Ctrl-C)."""
    import time

    while True:
        _jobs_pass()
        time.sleep(every)


def _jobs_pass() -> None:
    from omo.db import UnitOfWork, make_engine
    from omo.journeys import service as journeys
    from omo.messaging.adapters import adapters_from

    settings = get_settings()
    engine = make_engine(settings)
    report = journeys.run_jobs(
        UnitOfWork(engine), settings=settings, adapters=adapters_from(settings)
    )
    engine.dispose()
    typer.echo(report.model_dump_json())


@journeys_app.command("seed")
def journeys_seed(
    enable: Annotated[bool, typer.Option(help="switch the journeys on")] = False,
) -> None:
    """Save the seed playbook's journeys (switched off unless --enable) and their coupons."""
    from omo.db import UnitOfWork, make_engine
    from omo.journeys import playbook

    engine = make_engine(get_settings())
    keys = playbook.seed(UnitOfWork(engine), enable=enable)
    engine.dispose()
    typer.echo(f"{len(keys)} journeys: {', '.join(keys)}" + (" (on)" if enable else " (off)"))


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Option(help="sign-in name")],
    role: Annotated[str, typer.Option(help="admin, marketer, staff, manager or analyst")],
    store: Annotated[str | None, typer.Option(help="store code (staff only)")] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="read the password from standard input (scripts)")
    ] = False,
    if_missing: Annotated[bool, typer.Option(help="do nothing if the user exists")] = False,
) -> None:
    """Create a user; the password is asked for (or read from stdin), never an argument."""
    import sys

    from omo.db import UnitOfWork, make_engine
    from omo.shared.errors import Conflict, DomainError
    from omo.users import service as users

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    engine = make_engine(get_settings())
    try:
        user = users.create_user(
            UnitOfWork(engine), username=username, password=password, role=role,
            store_code=store,
        )  # fmt: skip
    except Conflict:
        if if_missing:
            return
        typer.echo(f"refused: user {username!r} exists", err=True)
        raise typer.Exit(2) from None
    except DomainError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    typer.echo(f"user {user.username} ({user.role}) created")


@key_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="who uses it, e.g. pos-taipei-101")],
    store: Annotated[str | None, typer.Option(help="bind to this store code")] = None,
    scope: Annotated[
        list[str] | None, typer.Option(help="repeat for each scope; default all")
    ] = None,
) -> None:
    """Create an API key; it is printed once and stored only hashed."""
    from omo.apikeys.service import create_key
    from omo.db import UnitOfWork, make_engine
    from omo.shared.errors import DomainError

    uow = UnitOfWork(make_engine(get_settings()))
    try:
        key = create_key(uow, name=name, store_code=store, scopes=scope)
    except DomainError as exc:
        typer.echo(f"error: {exc.field}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(key.key)
    typer.echo(f"name={key.name} store_id={key.store_id} scopes={' '.join(key.scopes)}", err=True)


@key_app.command("revoke")
def apikey_revoke(name: Annotated[str, typer.Option(help="the key's name")]) -> None:
    """Revoke an API key."""
    from omo.apikeys.service import revoke_key
    from omo.db import UnitOfWork, make_engine
    from omo.shared.errors import DomainError

    try:
        revoke_key(UnitOfWork(make_engine(get_settings())), name=name)
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"revoked {name}")


def _safe(url: str) -> str:
    """The URL without its password, for printing."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":  # pragma: no cover
    app()
