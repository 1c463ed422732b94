"""Member figures, RFM scores, segments, grades, lifecycle and tags on a hand-computed world."""

from __future__ import annotations

import ibis
import pyarrow as pa
import pytest

from omo.analytics.rfm import Policy, Segment, member_figures

D = 86_400
AS_OF = 1000 * D


def orders_table(rows: list[tuple[int, int, int, int, int]]) -> pa.Table:
    member, when, net, discount, online = zip(*rows, strict=True)
    return pa.table(
        {
            "member_id": list(member),
            "ordered_s": list(when),
            "net_cents": list(net),
            "discount_cents": list(discount),
            "online": list(online),
        }
    )


MEMBERS = pa.table({"member_id": [1, 2, 3, 4, 5, 6, 7], "joined_s": [0] * 7})
ORDERS = orders_table(
    [
        (1, 990 * D, 1000, 0, 0),
        (1, 995 * D, 2000, 100, 1),
        (1, 995 * D + 60, 500, 0, 1),  # same day: one purchase day, two orders
        (2, 500 * D, 500, 0, 0),
        (3, 100 * D, 700, 0, 1),
        (3, 999 * D, 900, 50, 1),
        (4, 950 * D, 4000, 400, 1),
        (5, 700 * D, 300, 0, 0),
        (5, 750 * D, 300, 0, 0),
        (5, 800 * D, 300, 0, 0),
        (6, 998 * D, 100, 0, 0),
        (6, 1001 * D, 9999, 0, 0),  # after the as-of date: not seen
        (99, 999 * D, 5000, 0, 0),  # not an active member (merged away): not counted
    ]
)


def figures(policy: Policy, members: pa.Table = MEMBERS, orders: pa.Table = ORDERS) -> dict:
    expr = member_figures(
        ibis.memtable(members), ibis.memtable(orders), as_of_s=AS_OF, policy=policy
    ).order_by("member_id")
    rows = ibis.duckdb.connect().to_pyarrow(expr).to_pylist()
    return {row["member_id"]: row for row in rows}


@pytest.fixture(scope="module")
def world() -> dict:
    return figures(Policy(utc_offset_s=0, high_value_share=0.2))


def column(world: dict, name: str) -> dict:
    return {member: row[name] for member, row in world.items()}


def test_purchase_figures(world):
    assert set(world) == {1, 2, 3, 4, 5, 6, 7}
    assert column(world, "orders") == {1: 3, 2: 1, 3: 2, 4: 1, 5: 3, 6: 1, 7: 0}
    assert column(world, "purchase_days") == {1: 2, 2: 1, 3: 2, 4: 1, 5: 3, 6: 1, 7: 0}
    assert column(world, "spend_cents") == {1: 3500, 2: 500, 3: 1600, 4: 4000, 5: 900, 6: 100, 7: 0}
    assert column(world, "first_day_cents")[1] == 1000
    assert column(world, "recency_days") == {1: 5, 2: 500, 3: 1, 4: 50, 5: 200, 6: 2, 7: None}
    assert column(world, "tenure_days") == {1: 10, 2: 500, 3: 900, 4: 50, 5: 300, 6: 2, 7: None}
    assert column(world, "discount_share")[1] == pytest.approx(1 / 3)
    assert column(world, "online_orders")[1] == 2
    assert column(world, "offline_orders")[1] == 1


def test_scores_are_fifths_of_the_cumulative_share_and_ties_share_a_score(world):
    # recency 500, 200, 50, 5, 2, 1 days -> shares 1/6 … 6/6 -> ceil(5 × share)
    assert column(world, "r") == {1: 4, 2: 1, 3: 5, 4: 3, 5: 2, 6: 5, 7: None}
    # purchase days 1, 1, 1 (share 3/6 -> 3), 2, 2 (5/6 -> 5), 3 (6/6 -> 5)
    assert column(world, "f") == {1: 5, 2: 3, 3: 5, 4: 3, 5: 5, 6: 3, 7: None}
    assert column(world, "m") == {1: 5, 2: 2, 3: 4, 4: 5, 5: 3, 6: 1, 7: None}


def test_segments_grades_and_lifecycle(world):
    assert column(world, "segment") == {
        1: "vip", 2: "lost", 3: "vip", 4: "new", 5: "dormant", 6: "new", 7: "prospect",
    }  # fmt: skip
    assert column(world, "grade") == {
        1: "top 50%", 2: "rest", 3: "top 50%", 4: "top 30%", 5: "rest", 6: "rest", 7: None,
    }  # fmt: skip
    assert column(world, "lifecycle") == {
        1: "active", 2: "lost", 3: "active", 4: "new", 5: "dormant", 6: "new", 7: "prospect",
    }  # fmt: skip


def test_automatic_tags(world):
    def tagged(tag: str) -> set[int]:
        return {m for m, row in world.items() if row[f"tag_{tag}"]}

    assert tagged("high_value") == {4}
    assert tagged("price_sensitive") == {3, 4}
    assert tagged("omnichannel") == {1}
    assert tagged("dormant") == {2, 5}


def test_merchant_segments_and_bins():
    policy = Policy(
        utc_offset_s=0,
        bins=3,
        segments=(Segment("big", "spend >= 16"), Segment("one", "orders == 1")),
    )
    world = figures(policy)
    assert column(world, "segment") == {
        1: "big", 2: "one", 3: "big", 4: "big", 5: "others", 6: "one", 7: "prospect",
    }  # fmt: skip
    assert set(column(world, "m").values()) == {1, 2, 3, None}


def test_a_day_is_the_brands_local_day():
    # 16:00:01 UTC is 00:00:01 the next day in Taipei (UTC+8)
    late = orders_table([(1, 998 * D + 16 * 3600 + 1, 100, 0, 0)])
    members = pa.table({"member_id": [1], "joined_s": [0]})
    assert figures(Policy(utc_offset_s=0), members, late)[1]["recency_days"] == 2
    assert figures(Policy(utc_offset_s=8 * 3600), members, late)[1]["recency_days"] == 1


def test_policy_checks_itself():
    with pytest.raises(ValueError, match="bins"):
        Policy(bins=1)
    with pytest.raises(ValueError, match="unknown field"):
        Policy(segments=(Segment("x", "nonsense > 1"),))
