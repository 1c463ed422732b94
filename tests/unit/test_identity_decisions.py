"""From scored pairs to merges and reviews: thresholds, clusters, rejections remembered."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omo.identity.decisions import Pair, decide, estimated_duplicates, pair


def p(a: int, b: int, prob: float) -> Pair:
    return pair(a, b, prob, 0.0, {})


def test_clusters_merge_into_the_oldest_member_and_the_grey_zone_is_queued() -> None:
    plan = decide(
        [p(3, 1, 0.999), p(3, 7, 0.995), p(4, 5, 0.7), p(8, 9, 0.2)],
        auto_merge=0.99, review=0.5, rejected=set(),
    )  # fmt: skip
    assert [(m.survivor, m.absorbed) for m in plan.merges] == [(1, (3, 7))]
    assert plan.merges[0].evidence[7].key == (3, 7)
    assert [r.key for r in plan.reviews] == [(4, 5)]


def test_review_pairs_are_named_by_the_members_they_will_be_after_the_merges() -> None:
    plan = decide(
        [p(1, 2, 0.999), p(2, 5, 0.8), p(1, 5, 0.6), p(2, 1, 0.7)],
        auto_merge=0.99, review=0.5, rejected=set(),
    )  # fmt: skip
    # 2 merges into 1; (2,5) and (1,5) both become (1,5): kept once, the stronger one
    assert [(r.key, r.probability) for r in plan.reviews] == [((1, 5), 0.8)]


def test_a_rejected_pair_is_never_merged_or_queued_again() -> None:
    plan = decide([p(1, 2, 0.999), p(3, 4, 0.7)], auto_merge=0.99, review=0.5,
                  rejected={(1, 2), (3, 4)})  # fmt: skip
    assert plan.merges == [] and plan.reviews == []


def test_a_cluster_holding_a_rejected_pair_goes_to_review_instead() -> None:
    # 1~2 and 2~3 are strong, but someone said 1 and 3 are two people
    plan = decide([p(1, 2, 0.999), p(2, 3, 0.999)], auto_merge=0.99, review=0.5,
                  rejected={(1, 3)})  # fmt: skip
    assert plan.merges == []
    assert plan.held_back == 1
    assert {r.key for r in plan.reviews} == {(1, 2), (2, 3)}


def test_a_chain_longer_than_max_cluster_goes_to_review() -> None:
    chain = [p(n, n + 1, 0.999) for n in range(1, 12)]
    plan = decide(chain, auto_merge=0.99, review=0.5, rejected=set(), max_cluster=8)
    assert plan.merges == [] and len(plan.reviews) == 11


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError):
        decide([], auto_merge=0.5, review=0.9, rejected=set())
    with pytest.raises(ValueError):
        decide([], auto_merge=0.9, review=0.0, rejected=set())


def test_estimated_duplicates() -> None:
    assert estimated_duplicates([(1, 2), (2, 3), (5, 6)]) == 3
    assert estimated_duplicates([]) == 0


pairs_st = st.lists(
    st.tuples(st.integers(1, 30), st.integers(1, 30), st.floats(0, 1)).filter(
        lambda t: t[0] != t[1]
    ),
    max_size=60,
)


@given(pairs_st, st.sets(st.tuples(st.integers(1, 30), st.integers(1, 30))))
def test_decisions_respect_thresholds_and_rejections(
    raw: list[tuple[int, int, float]], rejected_raw: set[tuple[int, int]]
) -> None:
    rejected = {(min(a, b), max(a, b)) for a, b in rejected_raw if a != b}
    pairs = [p(a, b, prob) for a, b, prob in raw]
    plan = decide(pairs, auto_merge=0.9, review=0.5, rejected=rejected, max_cluster=5)
    root = {m: c.survivor for c in plan.merges for m in c.absorbed}
    absorbed = [m for c in plan.merges for m in c.absorbed]
    assert len(absorbed) == len(set(absorbed))  # each member merged at most once
    for c in plan.merges:
        members = {c.survivor, *c.absorbed}
        assert c.survivor == min(members) and len(members) <= 5
        assert not any((x, y) in rejected for x in members for y in members if x < y)
        for m in c.absorbed:  # every merge is explained by a strong pair inside the cluster
            e = c.evidence[m]
            assert e.probability >= 0.9 and {e.a, e.b} <= members and m in (e.a, e.b)
    for r in plan.reviews:
        assert r.a < r.b and r.key not in rejected and r.probability >= 0.5
        assert r.a not in root and r.b not in root  # named by surviving members
    # every pair above the review threshold, not rejected, ends merged together or reviewed
    reviewed = {r.key for r in plan.reviews}
    for q in pairs:
        if q.probability < 0.5 or q.key in rejected:
            continue
        a, b = root.get(q.a, q.a), root.get(q.b, q.b)
        assert a == b or (min(a, b), max(a, b)) in reviewed or (min(a, b), max(a, b)) in rejected
