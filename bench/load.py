"""A day of a busy chain against `omo serve` on PostgreSQL (issue 8): look-ups, quotes,
checkouts, refunds and web-shop events in the mix of omo.testing.load.MIX, offered at rising
rates; throughput, p50/p95/p99 per kind, errors and retries at each, and the highest rate at
which checkouts keep p99 under 100 ms. Afterwards the database is reconciled with what the
clients were told (omo.testing.load.verify, which includes `omo check`).

The baseline of the same run: the same clients calling /healthz (one SELECT 1) flat out.

    python bench/load.py [--rates 25,50,100,150,200] [--seconds 20] [--workers 2] [--clients 16]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from omo.cli import alembic_config
from omo.db import UnitOfWork, make_engine
from omo.settings import Settings
from omo.testing.load import build_world, run_load, summary, verify
from omo.testing.postgres import PostgresServer
from omo.testing.serve import ServeProcess

sys.path.insert(0, str(Path(__file__).parent))
from checkout import load, trivial_request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="25,50,100,150,200", help="offered requests/s")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--members", type=int, default=5_000)
    parser.add_argument("--no-fsync", action="store_true", help="PostgreSQL without fsync")
    args = parser.parse_args()
    pg = PostgresServer(durable=not args.no_fsync).start()
    try:
        admin = sa.create_engine(pg.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE app")
        admin.dispose()
        url = pg.url("app")
        command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
        engine = make_engine(Settings(database_url=url))
        world = build_world(UnitOfWork(engine), members=args.members)
        server = ServeProcess(url, workers=args.workers).start()
        try:
            base = load(server.base, world.key, args.clients, 5, trivial_request)[0]
            print(f"baseline: /healthz flat out, {args.clients} clients: {base:.0f}/s", flush=True)
            # warm every worker's connections and statement caches before measuring
            run_load(server.base, world, rate=50, seconds=5, clients=args.clients, run="W")
            held = 0.0
            for step, rate in enumerate(float(r) for r in args.rates.split(",")):
                out = run_load(server.base, world, rate=rate, seconds=args.seconds,
                               clients=args.clients, run=f"R{step}", seed=step)  # fmt: skip
                print(f"offered {rate:.0f}/s (x{rate / base:.2f} of /healthz):")
                for line in summary(out):
                    print("  " + line)
                p99 = out.quantiles("commit")[2]
                if p99 < 100 and not out.errors:
                    held = max(held, out.rate("commit"))
                problems = verify(engine, out, run=f"R{step}")
                print(f"  reconciliation: {len(problems)} differences", *problems[:5], sep="\n  ")
            print(f"held: {held:.1f} checkouts/s with p99 < 100 ms and no errors")
        finally:
            server.stop()
            engine.dispose()
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
