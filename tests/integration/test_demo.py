"""The demo world: reproducible, consistent with its ground truth, and indistinguishable from data
that came in through the API (SQLite + PostgreSQL)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from alembic import command

from omo.cli import alembic_config
from omo.commerce.schemas import OrderIn
from omo.customer_view.service import customer_view
from omo.db import UnitOfWork, make_engine
from omo.demo.load import DemoSpec, load_demo
from omo.ingest import service as ingest
from omo.settings import Settings
from omo.shared.errors import Conflict
from tests.factories import ADMIN

SPEC = DemoSpec(people=400, seed=11, months=18, until=date(2026, 11, 1))


@pytest.fixture
def world(engine: sa.Engine, tmp_path: Path) -> tuple[str, Path]:
    truth = tmp_path / "truth"
    return load_demo(engine, SPEC, truth), truth


def test_same_spec_same_world(tmp_path: Path) -> None:
    lines = []
    for n in range(2):
        url = f"sqlite:///{tmp_path / f'demo{n}.sqlite'}"
        command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
        engine = make_engine(Settings(database_url=url))
        lines.append(load_demo(engine, SPEC, tmp_path / f"truth{n}"))
        engine.dispose()
    assert lines[0] == lines[1]
    assert "members=" in lines[0]
    assert "orders=" in lines[0]
    other = DemoSpec(people=400, seed=12, months=18, until=date(2026, 11, 1))
    url = f"sqlite:///{tmp_path / 'other.sqlite'}"
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    assert load_demo(make_engine(Settings(database_url=url)), other, tmp_path / "t") != lines[0]


def test_ground_truth_matches_what_was_loaded(world: tuple[str, Path], engine: sa.Engine) -> None:
    _, truth = world
    records = pq.read_table(truth / "records.parquet").to_pylist()
    people = pq.read_table(truth / "people.parquet").to_pylist()
    assert len(people) == SPEC.people
    with engine.connect() as conn:
        members = set(conn.execute(sa.text("SELECT id FROM members")).scalars())
        held = defaultdict(set)
        for mid, kind, ns, value in conn.execute(
            sa.text("SELECT member_id, kind, namespace, value FROM member_identifiers")
        ):
            held[mid].add(f"{kind}:{ns}:{value}")
    assert {r["member_id"] for r in records} == members  # every member is some record
    person_of: dict[int, int] = {}
    for r in records:
        # a member never mixes two people: deterministic resolution is exact here
        assert person_of.setdefault(r["member_id"], r["person_id"]) == r["person_id"]
        assert set(r["identifiers"].split(";")) <= held[r["member_id"]]
    # some people are several members: the duplicates probabilistic resolution must find
    per_person = defaultdict(set)
    for r in records:
        per_person[r["person_id"]].add(r["member_id"])
    duplicated = sum(1 for m in per_person.values() if len(m) > 1)
    assert 0.05 < duplicated / len(per_person) < 0.4
    # the realised purchases are the people's; guests are the gap
    with engine.connect() as conn:
        orders = conn.execute(sa.text("SELECT count(*) FROM orders")).scalar_one()
    assert orders == sum(p["purchases"] for p in people)


def test_stats_agree_with_the_orders(world: tuple[str, Path], engine: sa.Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT s.member_id, s.order_count, s.total_spend, "
                "  (SELECT count(*) FROM orders o WHERE o.member_id = s.member_id "
                "     AND o.status != 'cancelled'), "
                "  (SELECT coalesce(sum(total), 0) FROM orders o WHERE o.member_id = s.member_id "
                "     AND o.status != 'cancelled') "
                "FROM member_stats s"
            )
        ).all()
        members = conn.execute(sa.text("SELECT count(*) FROM members")).scalar_one()
    assert len(rows) == members
    for member_id, count, spend, real_count, real_spend in rows:
        assert (count, spend) == (real_count, real_spend), member_id


def test_demo_orders_replay_like_api_orders(world: tuple[str, Path], uow: UnitOfWork) -> None:
    """Posting a loaded order again with its content is a replay: the stored hash is the API's."""
    engine = uow.engine
    with engine.connect() as conn:
        picks = conn.execute(
            sa.text("SELECT id FROM orders WHERE member_id IS NOT NULL ORDER BY id LIMIT 3")
        ).scalars()
        bodies = [_order_body(conn, oid) for oid in list(picks)]
    for body in bodies:
        result = ingest.record_order(
            uow, order=OrderIn.model_validate(body), principal=ADMIN, currency="TWD", region="TW"
        )
        assert result.replayed


def test_a_loaded_member_reads_as_a_customer_view(world: tuple[str, Path], uow: UnitOfWork) -> None:
    with uow.engine.connect() as conn:
        member_id = conn.execute(
            sa.text("SELECT member_id FROM member_stats ORDER BY order_count DESC LIMIT 1")
        ).scalar_one()
    view = customer_view(uow, member_id=member_id)
    assert view.stats is not None
    assert view.stats.order_count >= 1
    assert view.identifiers


def test_the_demo_refuses_a_database_with_data(
    world: tuple[str, Path], engine: sa.Engine, tmp_path: Path
) -> None:
    first = world[0]
    with pytest.raises(Conflict):
        load_demo(engine, SPEC, tmp_path / "again")
    from omo.demo.load import summary

    assert summary(engine, SPEC, SPEC.end_day()) == first


def _order_body(conn: sa.Connection, order_id: int) -> dict[str, Any]:
    o = conn.execute(
        sa.text(
            "SELECT o.channel, o.external_id, o.ordered_at, s.code, o.fulfilment, o.status, "
            "o.shipping_fee FROM orders o LEFT JOIN stores s ON s.id = o.store_id WHERE o.id = :i"
        ),
        {"i": order_id},
    ).one()
    lines = conn.execute(
        sa.text(
            "SELECT sku, quantity, unit_price, discount FROM order_lines "
            "WHERE order_id = :i ORDER BY line_no"
        ),
        {"i": order_id},
    ).all()
    contacts = conn.execute(
        sa.text(
            "SELECT kind, namespace, value FROM order_contacts WHERE order_id = :i ORDER BY id"
        ),
        {"i": order_id},
    ).all()
    at = o.ordered_at if not isinstance(o.ordered_at, str) else o.ordered_at.replace(" ", "T")
    at = at if isinstance(at, str) else at.isoformat()
    if "+" not in at[10:]:
        at += "+00:00"
    return {
        "channel": o.channel,
        "external_id": o.external_id,
        "ordered_at": at,
        "store": o.code,
        "fulfilment": o.fulfilment,
        "status": o.status,
        "customer": [{"kind": k, "namespace": ns or None, "value": v} for k, ns, v in contacts],
        "lines": [
            {
                "sku": sku,
                "quantity": q,
                "unit_price": f"{u / 100:.2f}",
                "discount": f"{d / 100:.2f}",
            }
            for sku, q, u, d in lines
        ],
        "shipping_fee": f"{o.shipping_fee / 100:.2f}",
    }


def test_a_higher_purchase_rate_is_a_busier_world_with_its_truth(tmp_path: Path) -> None:
    import json

    busy = DemoSpec(people=400, seed=11, months=18, until=date(2026, 11, 1), purchases_per_year=30)
    url = f"sqlite:///{tmp_path / 'busy.sqlite'}"
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    engine = make_engine(Settings(database_url=url))
    line = load_demo(engine, busy, tmp_path / "truth")
    with engine.connect() as conn:
        orders = conn.execute(sa.text("SELECT count(*) FROM orders")).scalar_one()
    engine.dispose()
    assert "purchases_per_year=30 |" in line
    # the default world buys ≈ 2.5 times a person; at 30 a year far more (dropout caps it)
    assert orders > 3 * busy.people
    meta = json.loads((tmp_path / "truth" / "truth.json").read_text())
    assert meta["purchases_per_year"] == 30
    rate = meta["process"]["purchase_rate_per_day"]
    assert rate["r"] / rate["alpha"] * 365.25 == pytest.approx(30)  # the Gamma's mean
    people = pq.read_table(tmp_path / "truth" / "people.parquet", columns=["purchase_rate_per_day"])
    assert sum(people["purchase_rate_per_day"].to_pylist()) / busy.people * 365.25 == pytest.approx(
        30, rel=0.15
    )
    with pytest.raises(ValueError, match="purchases per year"):
        load_demo(engine, DemoSpec(people=5, purchases_per_year=0), tmp_path / "t2")
