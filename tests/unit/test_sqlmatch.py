"""keys_in: many composite keys matched with an index search, not a table scan."""

from __future__ import annotations

import sqlalchemy as sa

from omo.shared.sqlmatch import keys_in


def test_composite_keys_are_an_index_search_on_sqlite() -> None:
    meta = sa.MetaData()
    t = sa.Table(
        "ids", meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String), sa.Column("ns", sa.String), sa.Column("value", sa.String),
        sa.UniqueConstraint("kind", "ns", "value"),
    )  # fmt: skip
    engine = sa.create_engine("sqlite://")
    meta.create_all(engine)
    keys = [("phone", "", "+886912345678"), ("email", "", "a@b.co"), ("phone", "", "+886900")]
    with engine.begin() as conn:
        conn.execute(t.insert(), [{"kind": k, "ns": n, "value": v} for k, n, v in keys[:2]])
        query = sa.select(t.c.id).where(keys_in((t.c.kind, t.c.ns, t.c.value), keys))
        assert len(conn.execute(query).all()) == 2
        compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
    assert "SCAN ids" not in plan
    assert "USING" in plan and "INDEX" in plan
    with engine.connect() as conn:
        assert conn.execute(sa.select(t.c.id).where(keys_in((t.c.kind,), []))).all() == []
