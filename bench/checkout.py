"""Checkout commits/s over HTTP, beside two ceilings measured in the same run.

1. The database's raw rate for an equivalent transaction: pgbench (PostgreSQL) with a script that
   locks the member, inserts an order, two lines, a points entry and an outbox row, and updates
   the member's stats — the writes a commit makes, without Python; for SQLite the same statements
   from one Python connection.
2. The same `omo serve` answering a trivial JSON endpoint to the same clients: /livez, which
   touches no database. /healthz (a SELECT 1 through the pool and the thread pool's hand-off)
   is measured beside it, as earlier runs used it as this ceiling; it is 2–3 times slower.

3. A reference, not a ceiling: the same writes behind a raw ASGI app with no framework and no
   loyalty rules (bare_server.py), on the same uvicorn, processes and clients — how far
   Python's HTTP stack alone takes the raw transaction on this machine.

Then POST /api/v1/checkout/commit (member, two lines, points on some) from concurrent clients:
commits/s and p50/p99 latency. Goal: ≥ 50 % of the lower ceiling with p99 < 50 ms at the peak.
Each --clients count is measured in turn (default 1, 2, 4 and 8): the peak is the count with the
most commits/s, and the ceiling is the lower of the raw rate and the best /livez rate (the ratio
to the best /healthz rate is printed too).

    python bench/checkout.py [--seconds 10] [--clients N]... [--backend sqlite|postgres|both]
                             [--workers N]
    python bench/checkout.py --in-process 2000 [--backend ...]   # the use case alone
    python bench/checkout.py --in-process 500 --backend postgres --pg-delay-ms 0.25
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import sqlalchemy as sa
from alembic import command

from omo.apikeys.service import create_key
from omo.cli import alembic_config
from omo.commerce import service as commerce
from omo.commerce.schemas import ProductUpsert, StoreUpsert
from omo.db import UnitOfWork, make_engine
from omo.ingest import bulk
from omo.members.models import Member
from omo.settings import Settings
from omo.shared import clock
from omo.testing.postgres import PostgresServer
from omo.testing.tcpproxy import spawned

sys.path.insert(0, str(Path(__file__).parent))
from server import free_port, omo_serve

MEMBERS = 2_000
HISTORY = 2  # sales a member has made before the run
PGBENCH_SCRIPT = """\\set m random(1, {members})
\\set e random(1, 1000000000)
BEGIN;
SELECT id FROM members WHERE id = :m FOR NO KEY UPDATE;
INSERT INTO orders (channel, external_id, payload_hash, member_id, store_id, fulfilment, status,
  ordered_at, currency, subtotal, discount_total, shipping_fee, total, refunded_total, created_at)
  VALUES ('pos', 'pgb-' || :client_id || '-' || :e || '-' || random(), 'x', :m, 1, 'in_store',
  'completed', now(), 'TWD', 140000, 0, 0, 140000, 0, now()) RETURNING id AS oid \\gset
INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price, discount, line_total)
  VALUES (:oid, 1, 'APP-1', 1, 80000, 0, 80000), (:oid, 2, 'BEA-1', 1, 60000, 0, 60000);
INSERT INTO points_entries (member_id, kind, points, idempotency_key, order_id, created_at,
  available_at, expires_at, remaining)
  VALUES (:m, 'earn', 14, 'pgb:' || :oid, :oid, now(), now(), now() + interval '1 year', 14);
UPDATE member_stats SET order_count = order_count + 1, total_spend = total_spend + 140000,
  last_order_at = now() WHERE member_id = :m;
INSERT INTO outbox (topic, key, payload, created_at, available_at, attempts, state)
  VALUES ('OrderRecorded', 'pgb:' || :oid, '{{}}', now(), now(), 0, 'pending');
COMMIT;
"""


def prepare(url: str) -> str:
    """Migrate, a store, two products, MEMBERS members with HISTORY sales each over the last
    year (orders, points, tiers, stats), the planner's statistics; returns an API key.

    The history is there because a database with empty orders and points tables is not what a
    till meets. On PostgreSQL a prepared statement's generic plan made while a table was empty
    scans it: the tier window and the points balance read every row of their tables on each
    sale (0.18 and 0.10 ms a commit at 2,000 sales, growing) until autovacuum's ANALYZE
    replans them, minutes later."""
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    engine = make_engine(Settings(database_url=url))
    uow = UnitOfWork(engine)
    commerce.save_store(uow, code="TPE-101", data=StoreUpsert(name="信義店", region="台北市"))
    for sku, cat, price in (("APP-1", "服飾", "800"), ("BEA-1", "美妝保養", "600")):
        commerce.save_product(
            uow, sku=sku, data=ProductUpsert(name=sku, category=cat, price=Decimal(price))
        )
    now = clock.now()
    with engine.begin() as conn:
        bulk.append(conn, Member.__table__, (  # type: ignore[arg-type]
            {"id": n, "status": "active", "joined_at": now, "created_at": now, "updated_at": now}
            for n in range(1, MEMBERS + 1)
        ))  # fmt: skip
        conn.execute(
            sa.text(
                "INSERT INTO member_stats (member_id, order_count, total_spend, online_spend, "
                "offline_spend, online_orders, offline_orders) "
                "SELECT id, 0, 0, 0, 0, 0, 0 FROM members"
            )
        )
        bulk.reset_sequences(conn, [Member.__table__])  # type: ignore[list-item]
    history(uow)
    with engine.connect() as conn:
        conn.execute(sa.text("ANALYZE"))
        conn.commit()
    key = create_key(uow, name="bench", store_code=None, scopes=None).key
    engine.dispose()
    return key


def history(uow: UnitOfWork) -> None:
    """HISTORY sales per member, through the commit use case, dated over the last year."""
    from omo.apikeys.service import Principal
    from omo.checkout import service as checkout
    from omo.checkout.schemas import CommitRequest

    now, who = clock.now(), Principal("history")
    for n in range(MEMBERS * HISTORY):
        body = sale(n) | {
            "member_id": 1 + n % MEMBERS, "external_id": f"H-{n}",
            "ordered_at": (now - timedelta(days=1 + n % 360)).isoformat(),
        }  # fmt: skip
        req = CommitRequest.model_validate(body)
        checkout.commit(uow, req=req, principal=who, currency="TWD", region="TW")


def pgbench_tps(pg: PostgresServer, db: str, clients: int, seconds: int) -> float:
    script = Path(tempfile.mkdtemp()) / "commit.sql"
    script.write_text(PGBENCH_SCRIPT.format(members=MEMBERS))
    script.chmod(0o644)
    script.parent.chmod(0o755)
    out = subprocess.run(
        [str(pg.bindir / "pgbench"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres",
         "-n", "-f", str(script), "-c", str(clients), "-j", "2", "-T", str(seconds), db],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{out.stdout}\n{out.stderr}")
    for line in out.stdout.splitlines():
        if line.startswith("tps"):
            return float(line.split("=")[1].split()[0])
    raise RuntimeError(out.stdout + out.stderr)


# The pgbench script's writes for the SQLite raw rate and the bare server (bare_server.py),
# with named parameters: m the member, e the order's external id, o the order, k a unique key.
RAW_SQLITE = (
    "INSERT INTO orders (channel, external_id, payload_hash, member_id, store_id, fulfilment, "
    "status, ordered_at, currency, subtotal, discount_total, shipping_fee, total, refunded_total, "
    "created_at) VALUES ('pos', :e, 'x', :m, 1, 'in_store', 'completed', datetime('now'), 'TWD', "
    "140000, 0, 0, 140000, 0, datetime('now')) RETURNING id",
    "INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price, discount, line_total) "
    "VALUES (:o, 1, 'APP-1', 1, 80000, 0, 80000), (:o, 2, 'BEA-1', 1, 60000, 0, 60000)",
    "INSERT INTO points_entries (member_id, kind, points, idempotency_key, order_id, created_at, "
    "available_at, remaining) VALUES (:m, 'earn', 14, :k, :o, datetime('now'), datetime('now'), "
    "14)",
    "UPDATE member_stats SET order_count = order_count + 1, total_spend = total_spend + 140000 "
    "WHERE member_id = :m",
    "INSERT INTO outbox (topic, key, payload, created_at, available_at, attempts, state) VALUES "
    "('OrderRecorded', :k, '{}', datetime('now'), datetime('now'), 0, 'pending')",
)
RAW_POSTGRES = (
    "SELECT id FROM members WHERE id = %(m)s FOR NO KEY UPDATE",
    *(
        statement.replace("datetime('now')", "now()").replace(":e", "%(e)s")
        .replace(":m", "%(m)s").replace(":o", "%(o)s").replace(":k", "%(k)s")
        for statement in RAW_SQLITE
    ),
)  # fmt: skip


def sqlite_raw_tps(url: str, seconds: int) -> float:
    """The pgbench script's writes from one Python connection (SQLite has one writer)."""
    engine = make_engine(Settings(database_url=url))
    rng = random.Random(1)
    n = 0
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        values: dict[str, object] = {"m": rng.randint(1, MEMBERS), "e": f"raw-{n}"}
        with engine.begin() as conn:
            values["o"] = conn.execute(sa.text(RAW_SQLITE[0]), values).scalar_one()
            values["k"] = f"raw:{values['o']}"
            for statement in RAW_SQLITE[1:]:
                conn.execute(sa.text(statement), values)
        n += 1
    engine.dispose()
    return n / seconds


def load(
    base: str,
    key: str,
    clients: int,
    seconds: int,
    request: Callable[[httpx.Client, int], bool],
    first: int = 0,
) -> tuple[float, float, float, int]:
    """Requests/s, p50 and p99 in ms, and errors, from `clients` threads for `seconds`; request
    numbers start at `first` (a commit's order id is made from its number)."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(c: int) -> None:
        nonlocal errors
        n = 0
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as h:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                ok = request(h, first + c * 10_000_000 + n)
                took = time.perf_counter() - t
                n += 1
                with lock:
                    latencies.append(took)
                    errors += not ok

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return len(latencies) / elapsed, q[49] * 1000, q[98] * 1000, errors


def sale(n: int) -> dict[str, object]:
    """Sale number n: a random member buying the two catalogue products at the store."""
    rng = random.Random(n)
    return {
        "channel": "pos", "store": "TPE-101", "member_id": rng.randint(1, MEMBERS),
        "external_id": f"B-{n}",
        "lines": [{"sku": "APP-1", "quantity": 1}, {"sku": "BEA-1", "quantity": 1}],
    }  # fmt: skip


def commit_request(h: httpx.Client, n: int) -> bool:
    return h.post("/api/v1/checkout/commit", json=sale(n)).status_code == 201


def trivial_request(h: httpx.Client, n: int) -> bool:
    return h.get("/livez").status_code == 200


def health_request(h: httpx.Client, n: int) -> bool:
    return h.get("/healthz").status_code == 200


def databases(pg: PostgresServer | None, tmp: str, *names: str) -> list[str]:
    """URLs of new empty databases: on the PostgreSQL server, or SQLite files in `tmp`."""
    if pg is None:
        return [f"sqlite:///{tmp}/{name}.sqlite" for name in names]
    admin = sa.create_engine(pg.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return [pg.url(name) for name in names]


@contextmanager
def bare_serve(url: str, workers: int) -> Iterator[str]:
    """bare_server.py on the database at `url`; yields its base URL once it answers."""
    port = free_port()
    env = {**os.environ, "BARE_DATABASE_URL": url}
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("bare_server.py")), str(port), str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("bare_server.py did not start")
            time.sleep(0.1)
        yield base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def run(backend: str, counts: list[int], seconds: int, workers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="omo-bench-") as tmp:
        pg = PostgresServer(durable=True).start() if backend == "postgres" else None
        try:
            raw_url, app_url, bare_url = databases(pg, tmp, "raw", "app", "bare")
            prepare(raw_url)
            prepare(bare_url)
            key = prepare(app_url)
            raw = (
                pgbench_tps(pg, "raw", 16, seconds)
                if pg is not None
                else sqlite_raw_tps(raw_url, seconds)
            )
            label = "pgbench, 16 clients" if pg is not None else "same writes, 1 connection"
            print(f"{backend:8} raw transaction ({label}) {raw:8.0f}/s")
            # SQLite has one writer: more processes would only queue on its file lock
            processes = workers if pg is not None else 1
            print(f"{backend:8} omo serve, {processes} worker process(es)")
            trivial: dict[int, tuple[float, float, float, int]] = {}
            health: dict[int, tuple[float, float, float, int]] = {}
            commits: dict[int, tuple[float, float, float, int]] = {}
            with omo_serve(app_url, workers=processes) as base:
                for run_no, clients in enumerate(counts):
                    trivial[clients] = load(base, key, clients, seconds, trivial_request)
                    health[clients] = load(base, key, clients, seconds, health_request)
                    commits[clients] = load(
                        base, key, clients, seconds, commit_request, first=run_no * 10**9
                    )
                    t, h, c = trivial[clients], health[clients], commits[clients]
                    print(f"{backend:8} {clients:2} clients: /livez {t[0]:6.0f}/s p99 {t[2]:5.1f} "
                          f"ms | /healthz {h[0]:5.0f}/s | checkout commit {c[0]:5.0f}/s  "
                          f"p50 {c[1]:5.1f} ms  p99 {c[2]:5.1f} ms  errors {c[3]}",
                          flush=True)  # fmt: skip
            ceiling = min(raw, max(t[0] for t in trivial.values()))
            peak = max(commits, key=lambda n: commits[n][0])
            rate, _p50, p99, _errors = commits[peak]
            best_health = max(h[0] for h in health.values())
            print(
                f"{backend:8} peak at {peak} clients: {rate:.0f} commits/s, p99 {p99:.1f} ms, "
                f"x{rate / ceiling:4.2f} of the lower ceiling ({ceiling:.0f}/s; "
                f"x{rate / min(raw, best_health):4.2f} with /healthz as the endpoint, "
                f"{best_health:.0f}/s)",
                flush=True,
            )
            # the reference: the same writes behind a raw ASGI app, same clients and processes
            bare: dict[int, tuple[float, float, float, int]] = {}
            with bare_serve(bare_url, processes) as base:
                for run_no, clients in enumerate(counts):
                    bare[clients] = b = load(
                        base, key, clients, seconds, commit_request, first=run_no * 10**9
                    )
                    print(f"{backend:8} {clients:2} clients: bare ASGI app, same writes "
                          f"{b[0]:5.0f}/s  p50 {b[1]:5.1f} ms  p99 {b[2]:5.1f} ms  errors "
                          f"{b[3]}", flush=True)  # fmt: skip
            best = max(b[0] for b in bare.values())
            print(
                f"{backend:8} bare ASGI app at its peak: {best:.0f}/s, x{best / ceiling:4.2f} of "
                f"the lower ceiling; omo serve's peak is x{rate / best:4.2f} of it",
                flush=True,
            )
        finally:
            if pg is not None:
                pg.stop()


def in_process(backend: str, commits: int, delay_ms: float = 0.0) -> None:
    """The commit use case alone, in this process: `checkout.commit` on the bench's data, one
    sale after another, without HTTP. Every step of docs/performance.md's table was timed so,
    alternating the code before and after. `delay_ms` (PostgreSQL): the sales reach the server
    through omo.testing.tcpproxy, each way held that long — a database across a network."""
    from omo.apikeys.service import Principal
    from omo.checkout import service as checkout
    from omo.checkout.schemas import CommitRequest

    with tempfile.TemporaryDirectory(prefix="omo-bench-") as tmp:
        pg = PostgresServer(durable=True).start() if backend == "postgres" else None
        try:
            (url,) = databases(pg, tmp, "app")
            prepare(url)
            proxy = None
            if pg is not None and delay_ms > 0:
                proxy, port = spawned(pg.port, delay_ms / 1000)
                url = url.replace(f":{pg.port}/", f":{port}/")
            engine = make_engine(Settings(database_url=url))
            uow, who = UnitOfWork(engine), Principal("bench")

            def commit(n: int) -> None:
                req = CommitRequest.model_validate(sale(n))
                checkout.commit(uow, req=req, principal=who, currency="TWD", region="TW")

            warm = min(300, commits)
            for n in range(warm):
                commit(n)
            started, cpu = time.perf_counter(), time.thread_time()
            for n in range(warm, warm + commits):
                commit(n)
            took = (time.perf_counter() - started) / commits
            cpu = (time.thread_time() - cpu) / commits
            engine.dispose()
            if proxy is not None:
                proxy.kill()
                proxy.wait()
            away = f", {delay_ms} ms each way to the server" if pg and delay_ms > 0 else ""
            print(
                f"{backend:8} in process: {took * 1000:.3f} ms a commit ({cpu * 1000:.3f} ms "
                f"of it on this process's CPU) over {commits} commits{away}",
                flush=True,
            )
        finally:
            if pg is not None:
                pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, action="append", help="default: 1, 2, 4, 8")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--workers", type=int, default=1, help="omo serve processes (PostgreSQL)")
    parser.add_argument(
        "--in-process", type=int, metavar="COMMITS", help="time the use case alone, no HTTP"
    )
    parser.add_argument(
        "--pg-delay-ms", type=float, default=0.0,
        help="with --in-process: hold PostgreSQL's traffic this long each way (a network)",
    )  # fmt: skip
    args = parser.parse_args()
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        if args.in_process:
            in_process(backend, args.in_process, args.pg_delay_ms)
        else:
            run(backend, args.clients or [1, 2, 4, 8], args.seconds, args.workers)


if __name__ == "__main__":
    main()
