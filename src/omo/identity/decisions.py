"""From scored pairs to decisions (pure): which members to merge now, which pairs a person should
look at, and which to leave alone.

- Pairs at or above the auto-merge threshold join clusters (connected components); a cluster is
  merged into its oldest member (lowest id) - unless someone already rejected a pair inside it,
  or it grew beyond `max_cluster` members (a chain of look-alikes, not one person): then its
  pairs go to review instead.
- Pairs between the review and the auto-merge thresholds go to review, named by the members
  they will be once the merges are done; pairs already rejected never come back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pair:
    a: int  # a < b
    b: int
    probability: float
    weight: float
    weights: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> tuple[int, int]:
        return (self.a, self.b)


@dataclass(frozen=True)
class ClusterMerge:
    survivor: int
    absorbed: tuple[int, ...]
    # for each absorbed member, the strongest pair that ties it into the cluster
    evidence: dict[int, Pair]


@dataclass
class Plan:
    merges: list[ClusterMerge]
    reviews: list[Pair]
    held_back: int = 0  # auto-merge clusters sent to review (a rejection inside, or too big)


class Components:
    """Union-find over member ids; each group is named by its lowest id."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        root = self.parent.setdefault(x, x)
        while root != self.parent[root]:
            root = self.parent[root]
        while x != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # the root is the lowest id

    def groups(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for x in self.parent:
            out.setdefault(self.find(x), []).append(x)
        return out


def pair(a: int, b: int, probability: float, weight: float, weights: dict[str, Any]) -> Pair:
    lo, hi = (a, b) if a < b else (b, a)
    return Pair(lo, hi, probability, weight, weights)


def decide(
    pairs: Iterable[Pair],
    *,
    auto_merge: float,
    review: float,
    rejected: set[tuple[int, int]],
    max_cluster: int = 8,
) -> Plan:
    if not 0 < review <= auto_merge <= 1:
        raise ValueError("thresholds must satisfy 0 < review <= auto_merge <= 1")
    strong: list[Pair] = []
    grey: list[Pair] = []
    for p in pairs:
        if p.a == p.b or p.key in rejected or p.probability < review:
            continue
        (strong if p.probability >= auto_merge else grey).append(p)

    comps = Components()
    for p in strong:
        comps.union(p.a, p.b)
    by_root: dict[int, list[Pair]] = {}
    for p in strong:
        by_root.setdefault(comps.find(p.a), []).append(p)
    groups = comps.groups()

    merges: list[ClusterMerge] = []
    merged_into: dict[int, int] = {}
    held_back = 0
    for root, members in sorted(groups.items()):
        inside = set(members)
        blocked = len(members) > max_cluster or any(
            (x, y) in rejected for x in inside for y in inside if x < y
        )
        if blocked:
            held_back += 1
            grey.extend(by_root[root])
            continue
        evidence: dict[int, Pair] = {}
        for p in by_root[root]:
            for m in (p.a, p.b):
                if m != root and (m not in evidence or p.probability > evidence[m].probability):
                    evidence[m] = p
        absorbed = tuple(sorted(inside - {root}))
        merges.append(ClusterMerge(root, absorbed, evidence))
        for m in absorbed:
            merged_into[m] = root

    best: dict[tuple[int, int], Pair] = {}
    for p in grey:
        a, b = merged_into.get(p.a, p.a), merged_into.get(p.b, p.b)
        if a == b:
            continue
        q = pair(a, b, p.probability, p.weight, p.weights)
        if q.key in rejected:
            continue
        if q.key not in best or q.probability > best[q.key].probability:
            best[q.key] = q
    reviews = sorted(best.values(), key=lambda p: (-p.probability, p.a, p.b))
    return Plan(merges=merges, reviews=reviews, held_back=held_back)


def estimated_duplicates(pairs: Iterable[tuple[int, int]]) -> int:
    """Members that are duplicates of another: members in clusters minus one per cluster."""
    comps = Components()
    for a, b in pairs:
        comps.union(a, b)
    return sum(len(g) - 1 for g in comps.groups().values())
