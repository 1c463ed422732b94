"""Orders/s into OMO: through the HTTP API (`omo serve` + httpx) against the service layer it
wraps (ingest.record_order, in process), measured in the same run on SQLite and PostgreSQL.

The service layer is the baseline; every HTTP figure is printed as a ratio of it, because these
machines are noisy and only ratios from one run compare. Each measurement gets a fresh database
with the same stores, and the same orders: a mix of POS, web, app and marketplace orders, repeat
customers named by phone or e-mail in different spellings, and guest orders.

    python bench/ingest.py [--orders 2000] [--clients 4] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from alembic import command

from omo.apikeys.service import Principal, create_key
from omo.cli import alembic_config
from omo.commerce import service as commerce
from omo.commerce.schemas import OrderIn, StoreUpsert
from omo.db import UnitOfWork, make_engine
from omo.ingest import service as ingest
from omo.settings import Settings
from omo.testing.postgres import PostgresServer

sys.path.insert(0, str(Path(__file__).parent))
from server import omo_serve
from workload import STORES, make_orders


class Databases:
    """A fresh, migrated database per measurement, on one backend."""

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend = backend
        self.workdir = workdir
        self.pg: PostgresServer | None = None
        self.count = 0
        if backend == "postgres":
            self.pg = PostgresServer(durable=True).start()

    def fresh(self) -> str:
        self.count += 1
        if self.pg is None:
            url = f"sqlite:///{self.workdir / f'bench{self.count}.sqlite'}"
        else:
            admin = sa.create_engine(self.pg.url(), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE bench{self.count}")
            admin.dispose()
            url = self.pg.url(f"bench{self.count}")
        command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
        uow = UnitOfWork(make_engine(Settings(database_url=url)))
        for code in STORES:
            commerce.save_store(uow, code=code, data=StoreUpsert(name=code, region=code[:3]))
        return url

    def close(self) -> None:
        if self.pg is not None:
            self.pg.stop()


def count_orders(url: str) -> int:
    engine = make_engine(Settings(database_url=url))
    with engine.connect() as conn:
        n: int = conn.execute(sa.text("SELECT count(*) FROM orders")).scalar_one()
    engine.dispose()
    return n


def via_service(url: str, orders: list[dict[str, Any]]) -> float:
    """Seconds to record the orders one by one through the use case, validation included."""
    uow = UnitOfWork(make_engine(Settings(database_url=url)))
    who = Principal("bench")
    start = time.perf_counter()
    for body in orders:
        ingest.record_order(
            uow, order=OrderIn.model_validate(body), principal=who, currency="TWD", region="TW"
        )
    return time.perf_counter() - start


def via_http(url: str, orders: list[dict[str, Any]], clients: int) -> float:
    """Seconds to POST the orders to a real `omo serve`, from `clients` concurrent clients."""
    key = create_key(
        UnitOfWork(make_engine(Settings(database_url=url))),
        name="bench",
        store_code=None,
        scopes=None,
    ).key
    with omo_serve(url) as base:
        chunks = [orders[i::clients] for i in range(clients)]

        def send(chunk: list[dict[str, Any]]) -> None:
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
                for body in chunk:
                    r = http.post("/api/v1/orders", json=body)
                    if r.status_code != 201:
                        raise RuntimeError(f"{r.status_code}: {r.text}")

        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(send, chunks))
        return time.perf_counter() - start


def run_backend(backend: str, orders: list[dict[str, Any]], clients: int) -> None:
    with tempfile.TemporaryDirectory(prefix="omo-bench-") as tmp:
        dbs = Databases(backend, Path(tmp))
        try:
            runs: list[tuple[str, Callable[[str], float]]] = [
                ("service layer (baseline)", lambda url: via_service(url, orders)),
                ("HTTP, 1 client", lambda url: via_http(url, orders, 1)),
                (f"HTTP, {clients} clients", lambda url: via_http(url, orders, clients)),
            ]
            baseline = 0.0
            for label, run in runs:
                url = dbs.fresh()
                seconds = run(url)
                stored = count_orders(url)
                if stored != len(orders):
                    raise RuntimeError(f"{label}: {stored} orders stored of {len(orders)}")
                rate = len(orders) / seconds
                baseline = baseline or rate
                print(
                    f"{backend:8} {label:26} {rate:8.0f} orders/s  "
                    f"{1000 * seconds / len(orders):6.2f} ms/order  x{rate / baseline:4.2f}",
                    flush=True,
                )
        finally:
            dbs.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    orders = make_orders(args.orders)
    print(f"{args.orders} orders, {os.cpu_count()} CPUs; ratios against the service layer")
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        run_backend(backend, orders, args.clients)


if __name__ == "__main__":
    main()
