"""keys_in on both databases: the same rows as the keys name, whichever way it is rendered
(grouped ORs on SQLite, the keys as one JSON array on PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omo.shared.sqlmatch import keys_in

meta = sa.MetaData()
ids = sa.Table(
    "keys_in_test", meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(24)), sa.Column("ns", sa.String(24)),
    sa.Column("value", sa.String(254)),
    sa.UniqueConstraint("kind", "ns", "value"),
)  # fmt: skip
key = st.tuples(
    st.sampled_from(["phone", "email", "marketplace_buyer"]),
    st.sampled_from(["", "shopee", "momo"]),
    st.text(alphabet="ab'\",()ç臺", max_size=4),
)
Key = tuple[str, str, str]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stored=st.lists(key, max_size=12, unique=True),
    asked=st.lists(key, max_size=12),
    many=st.booleans(),
)
def test_keys_in_finds_exactly_the_keys_asked_for(
    engine: sa.Engine, stored: list[Key], asked: list[Key], many: bool
) -> None:
    """`many`: enough keys asked (none of them stored) for PostgreSQL's JSON rendering, which
    must carry quotes, commas and CJK through as they are."""
    from omo.shared.sqlmatch import MANY_FROM

    filler = [("card", "", f"C{n}") for n in range(MANY_FROM)] if many else []
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(ids.delete())
        if stored:
            conn.execute(ids.insert(), [{"kind": k, "ns": n, "value": v} for k, n, v in stored])
    cols = (ids.c.kind, ids.c.ns, ids.c.value)
    with engine.connect() as conn:
        found = {
            (k, n, v)
            for k, n, v in conn.execute(sa.select(*cols).where(keys_in(cols, asked * 2 + filler)))
        }
    assert found == set(stored) & set(asked)


def test_many_keys_and_a_cached_statement_find_what_each_call_asks(engine: sa.Engine) -> None:
    """From MANY_FROM keys PostgreSQL gets them as JSON; the second call of the same shape runs the
    cached statement and must bind its own keys."""
    from omo.shared.sqlmatch import MANY_FROM

    meta.create_all(engine)
    stored = [("phone", "", f"+8869{n:08d}") for n in range(3 * MANY_FROM)]
    with engine.begin() as conn:
        conn.execute(ids.delete())
        conn.execute(ids.insert(), [{"kind": k, "ns": n, "value": v} for k, n, v in stored])
    cols = (ids.c.kind, ids.c.ns, ids.c.value)
    for part in (stored[: 2 * MANY_FROM], stored[MANY_FROM:]):
        asked = part + [("email", "", f"{v}@x.tw") for _, _, v in part[:10]]  # ten not held
        with engine.connect() as conn:
            found = conn.execute(sa.select(*cols).where(keys_in(cols, asked))).all()
        assert sorted(tuple(r) for r in found) == sorted(part)
