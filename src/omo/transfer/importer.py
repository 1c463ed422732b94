"""`omo import`: nothing is committed before the whole file is valid — never a silent half-import.

1. Read every row and build the areas' inputs (shapes.py); validate each with the same schemas
   as the API, and check against the database what a schema cannot (stores exist, an order id
   already recorded with other content, the currency). Orders are shaped and validated on
   every core in runs of whole orders (orderfacts.py), and written run by run as they are
   validated, in a transaction that is committed only when the whole file is valid and rolled
   back otherwise (writers.EarlyOrders; on SQLite only for files of up to 60,000 rows).
2. Any bad row refuses the whole file with row, column and reason for each — unless a
   quarantine file is given: then good rows land and bad rows go there with their reasons.
3. Write. Orders take a bulk path when identity needs no decision (every identifier already
   names the same member, or none names anyone): ids reserved in a block, rows appended with
   executemany, stats rebuilt set-based. Orders that join or extend identities go through the
   same use case as POST /orders, in the same transaction. Members and events always do.

Re-importing a file changes nothing: orders and events are idempotent on their ids, members on
their identifiers, stores and products on their codes.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from omo.apikeys.service import Principal
from omo.db import UnitOfWork
from omo.shared.gcpause import collector_paused
from omo.transfer.formats import RowTable, UnreadableFile, detect_format, read_table
from omo.transfer.marketplaces import records_for
from omo.transfer.orderfacts import OrderRuns, OrdersRead
from omo.transfer.results import ImportRefused, ImportReport, Progress
from omo.transfer.shapes import KINDS, SHAPES, RowError, ShapeError
from omo.transfer.validation import check_against_database, validate, write_rejects
from omo.transfer.writers import EARLY_PIECE_ROWS, WRITERS, EarlyOrders, early_share

__all__ = ["ImportRefused", "ImportReport", "import_file"]


def import_file(
    uow: UnitOfWork,
    *,
    kind: str,
    path: Path,
    fmt: str | None = None,
    shape: str = "omo",
    quarantine: Path | None = None,
    timezone: str = "Asia/Taipei",
    region: str = "TW",
    currency: str = "TWD",
    principal: Principal | None = None,
    encoding: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    with collector_paused():
        return _import(uow, kind, path, fmt, shape, quarantine, timezone, region, currency,
                       principal, encoding, progress)  # fmt: skip


def _read_orders(
    uow: UnitOfWork,
    table: RowTable,
    shape: str,
    tz: ZoneInfo,
    region: str,
    currency: str,
    quarantine: Path | None,
    who: Principal,
    progress: Progress,
) -> tuple[OrdersRead, list[RowError], EarlyOrders | None]:
    """The file's orders read, validated and checked; and, when they were written run by run
    as they were validated (writers.EarlyOrders), that write, still open."""
    share = early_share(uow.engine.dialect.name, len(table))
    runs = OrderRuns(table, shape, tz, region, first_share=share or 0.5,
                     piece_rows=EARLY_PIECE_ROWS if share else None)  # fmt: skip
    streamed = share is not None and runs.more  # written run by run as validated
    early = EarlyOrders(uow, who, progress) if streamed else None
    checked: list[RowError] = []
    try:
        first = runs.first()
        if streamed:
            for run in itertools.chain([first], runs.following()):
                bad = check_against_database(uow, "orders", run.valid, currency)
                checked += bad
                if early is None:
                    continue
                if quarantine is None and (run.errors or bad):
                    early.rollback()  # the file is refused: the rest is read for its errors
                    early = None
                    continue
                rejected = _rejected([*run.errors, *bad], run.record_rows)
                early.add([v for v in run.valid if not rejected.intersection(v.rows)])
        orders, stands = runs.rest()
        if not (streamed and stands):  # else every run was checked as it came
            if early is not None:
                early.rollback()  # the file was shaped again whole: these are not its orders
                early = None
            checked = check_against_database(uow, "orders", orders.valid, currency)
    except BaseException:
        if early is not None:
            early.rollback()
        raise
    finally:
        runs.close()
    return orders, [*orders.errors, *checked], early


def _rejected(errors: list[RowError], record_rows: list[list[int]]) -> set[int]:
    """The rows to reject: every bad row, and the other rows of its record (an order with a
    bad line is not half-kept), each of which gets an error saying so."""
    bad_rows = {e.row for e in errors}
    for rows in record_rows:
        if bad_rows.intersection(rows):
            errors.extend(
                RowError(n, "(record)", f"rejected with row {min(bad_rows & set(rows))}")
                for n in rows
                if n not in bad_rows
            )
    return {e.row for e in errors}


def _import(
    uow: UnitOfWork,
    kind: str,
    path: Path,
    fmt: str | None,
    shape: str,
    quarantine: Path | None,
    timezone: str,
    region: str,
    currency: str,
    principal: Principal | None,
    encoding: str | None,
    progress: Progress | None,
) -> ImportReport:
    started = time.perf_counter()
    if kind not in KINDS:
        raise ImportRefused(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if shape not in SHAPES:
        raise ImportRefused(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")
    try:
        tz = ZoneInfo(timezone)
    except (KeyError, ValueError):
        raise ImportRefused(f"unknown time zone {timezone!r}") from None
    who = principal or Principal("import")
    progress = progress or (lambda n: None)
    early: EarlyOrders | None = None
    try:
        fmt = detect_format(path, fmt)
        table = read_table(path, fmt, encoding=encoding)
        if kind == "orders":
            orders, errors, early = _read_orders(
                uow, table, shape, tz, region, currency, quarantine, who, progress
            )
            valid, record_rows = orders.valid, orders.record_rows
        else:
            records, errors = records_for(kind, shape, table.rows(), tz)
            valid, bad = validate(kind, records, region)
            errors.extend(bad)
            record_rows = [rec.rows for rec in records]
            errors.extend(check_against_database(uow, kind, valid, currency))
    except (UnreadableFile, ShapeError) as exc:
        raise ImportRefused(str(exc)) from None
    try:
        report = ImportReport(kind=kind, shape=shape, rows=len(table), records=len(record_rows))
        if kind == "orders":
            report.cores = orders.cores
        if errors:
            errors.sort(key=lambda e: (e.row, e.column))
            if quarantine is None:
                raise ImportRefused(
                    f"{len({e.row for e in errors})} bad row(s); nothing was imported", errors
                )
            bad_rows = _rejected(errors, record_rows)
            write_rejects(quarantine, dict(table.rows()), errors)
            valid = [v for v in valid if not bad_rows.intersection(v.rows)]
            report.rejected_rows = len(bad_rows)
            report.errors = errors
        if early is not None:
            early.commit(report)
            valid = [v for v in valid if id(v) not in early.written]
    except BaseException:
        if early is not None:
            early.rollback()
        raise
    WRITERS[kind](uow, kind, valid, who, report, progress, region)
    report.seconds = time.perf_counter() - started
    return report
