"""Rows/s of `omo import orders` beside a raw load of the same rows, in the same run.

The raw load is what the database itself can take: read the same CSV, group rows into orders,
and write orders, lines and contacts with no validation, no identifier normalisation and no
identity work — SQLite executemany in one transaction, PostgreSQL COPY. The import does all of
that work and more (validate with the API's schemas, normalise phones and e-mails, hash each
order for idempotency, resolve members, keep stats). The target is at least half the raw rate.

    python bench/import.py [--orders 20000] [--backend sqlite|postgres|both] [--repeat 5] [--till]

With --repeat the two loads alternate, each into a fresh database, and the best run of each is
compared (the median beside it): on these noisy machines one pair of runs can differ by 30 %.
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command

from omo.cli import alembic_config
from omo.commerce import service as commerce
from omo.commerce.schemas import StoreUpsert
from omo.db import UnitOfWork, make_engine
from omo.settings import Settings
from omo.shared.gcpause import collector_paused
from omo.testing.postgres import PostgresServer
from omo.transfer.formats import write_csv
from omo.transfer.importer import import_file

sys.path.insert(0, str(Path(__file__).parent))
from workload import CSV_HEADER, STORES, csv_rows, make_orders


def fresh(backend: str, pg: PostgresServer | None, tmp: Path, n: int) -> str:
    if pg is None:
        url = f"sqlite:///{tmp / f'import{n}.sqlite'}"
    else:
        admin = sa.create_engine(pg.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE import{n}")
        admin.dispose()
        url = pg.url(f"import{n}")
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    uow = UnitOfWork(make_engine(Settings(database_url=url)))
    for code in STORES:
        commerce.save_store(uow, code=code, data=StoreUpsert(name=code, region=code[:3]))
    return url


def raw_load(url: str, path: Path) -> float:
    """Read the CSV and write the rows as they are, the database's fastest way.

    Under the same collector pause as `omo import` (omo.shared.gcpause), or the baseline would
    be slowed by Python's garbage collector walking its lists of rows, not by the database.
    """
    with collector_paused():
        return _raw_load(url, path)


def _raw_load(url: str, path: Path) -> float:
    engine = make_engine(Settings(database_url=url))
    start = time.perf_counter()
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))[1:]
    with engine.connect() as conn:
        stores = {code: i for code, i in conn.execute(sa.text("SELECT code, id FROM stores"))}
    orders: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    contacts: list[tuple[Any, ...]] = []
    index: dict[tuple[str, str], int] = {}
    now = datetime.now(UTC)
    for channel, ext, at, store, phone, email, sku, qty, price in rows:
        oid = index.get((channel, ext))
        if oid is None:
            oid = index[(channel, ext)] = len(index) + 1
            at_utc = datetime.fromisoformat(at)
            orders.append((oid, channel, ext, "-", None, stores.get(store), "delivery",
                           "completed", at_utc, "TWD", 0, 0, 0, 0, now))  # fmt: skip
            for kind, value in (("phone", phone), ("email", email)):
                if value:
                    contacts.append((len(contacts) + 1, oid, kind, "", value))
        cents = int(float(price) * 100) * int(qty)
        lines.append((len(lines) + 1, oid, len(lines) + 1, sku, None, None, None, int(qty),
                      int(float(price) * 100), 0, cents))  # fmt: skip
    tables = {
        "orders": ("id, channel, external_id, payload_hash, member_id, store_id, fulfilment, "
                   "status, ordered_at, currency, subtotal, discount_total, shipping_fee, total, "
                   "created_at", orders),
        "order_lines": ("id, order_id, line_no, sku, product_id, name, category, quantity, "
                        "unit_price, discount, line_total", lines),
        "order_contacts": ("id, order_id, kind, namespace, value", contacts),
    }  # fmt: skip
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if engine.dialect.name == "sqlite":
            cur.execute("BEGIN")  # one transaction (the driver is in autocommit mode)
        for table, (columns, data) in tables.items():
            if engine.dialect.name == "postgresql":
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for row in data:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(data[0]))
                data = [
                    tuple(v.isoformat(" ") if isinstance(v, datetime) else v for v in r)
                    for r in data
                ]
                cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", data)
        raw.commit()
    finally:
        raw.close()
    seconds = time.perf_counter() - start
    engine.dispose()
    return seconds


def via_import(url: str, path: Path) -> float:
    engine = make_engine(Settings(database_url=url))
    report = import_file(UnitOfWork(engine), kind="orders", path=path)
    engine.dispose()
    if report.rejected_rows or not report.created:
        raise RuntimeError(report.summary())
    return report.seconds


def till_waits(tmp: Path, path: Path) -> None:
    """What the import costs a till on SQLite: `omo import` runs in a process of its own (it
    forks from there) while this one writes a row every 5 ms in transactions of its own, as a
    till would; prints the longest and the 99th-percentile wait for the write lock."""
    url = fresh("sqlite", None, tmp, 999)
    till = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=60, isolation_level=None)
    till.execute("CREATE TABLE till_writes (id INTEGER PRIMARY KEY, at REAL)")
    importing = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys; from pathlib import Path; from omo.db import UnitOfWork, make_engine; "
            "from omo.settings import Settings; from omo.transfer.importer import import_file; "
            f"r = import_file(UnitOfWork(make_engine(Settings(database_url={url!r}))), "
            f"kind='orders', path=Path({str(path)!r})); print(r.seconds)"
        )],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    waits = []
    while importing.poll() is None:
        start = time.perf_counter()
        till.execute("BEGIN IMMEDIATE")
        till.execute("INSERT INTO till_writes (at) VALUES (?)", (start,))
        till.execute("COMMIT")
        waits.append(time.perf_counter() - start)
        time.sleep(0.005)
    seconds = float((importing.stdout.read() if importing.stdout else "0").strip() or 0)
    waits.sort()
    p99 = waits[int(len(waits) * 0.99)]
    print(
        f"sqlite   a till writing during the import ({seconds:.2f} s): {len(waits)} writes, "
        f"longest wait {waits[-1] * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms",
        flush=True,
    )


def count(url: str) -> tuple[int, int]:
    engine = make_engine(Settings(database_url=url))
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM orders")).scalar_one()
        m = conn.execute(sa.text("SELECT count(*) FROM order_lines")).scalar_one()
    engine.dispose()
    return int(n), int(m)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each load (best counts)")
    parser.add_argument("--till", action="store_true", help="also: a till's wait on SQLite")
    args = parser.parse_args()
    orders = make_orders(args.orders)
    with tempfile.TemporaryDirectory(prefix="omo-bench-") as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "orders.csv"
        rows = csv_rows(orders)
        write_csv(path, CSV_HEADER, rows)
        print(f"{args.orders} orders = {len(rows)} CSV rows; ratios against the raw load")
        if args.till:
            till_waits(tmp, path)
        for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
            pg = PostgresServer(durable=True).start() if backend == "postgres" else None
            try:
                runs: dict[str, list[float]] = {"raw load (baseline)": [], "omo import orders": []}
                n = 0
                for _ in range(args.repeat):
                    for label, run in [
                        ("raw load (baseline)", raw_load), ("omo import orders", via_import)
                    ]:  # fmt: skip
                        url = fresh(backend, pg, tmp, n)
                        n += 1
                        seconds = run(url, path)
                        stored = count(url)
                        if stored != (len(orders), len(rows)):
                            raise RuntimeError(f"{label}: stored {stored}")
                        runs[label].append(seconds)
                best_base = min(runs["raw load (baseline)"])
                median_base = statistics.median(runs["raw load (baseline)"])
                for label, times in runs.items():
                    best, median = min(times), statistics.median(times)
                    print(
                        f"{backend:8} {label:22} {len(rows) / best:10,.0f} rows/s  "
                        f"best {best:6.2f} s  x{best_base / best:5.2f}  "
                        f"median {median:6.2f} s  x{median_base / median:5.2f}",
                        flush=True,
                    )
            finally:
                if pg is not None:
                    pg.stop()


if __name__ == "__main__":
    main()
