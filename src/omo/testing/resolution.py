"""Scoring identity resolution against a ground truth: what a run left in the database (its
merges, and the pairs it queued for review), as pairs of records. Used by the tests and by
bench/resolve.py."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa

from omo.identity.decisions import Components

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Outcome:
    merged: dict[int, int]  # every member -> the member it is now
    queued: dict[int, int]  # every member -> its group once every pending review is accepted


def outcome(conn: sa.Connection) -> Outcome:
    merged, queued = Components(), Components()
    for mid, status, into in conn.execute(
        sa.text("SELECT id, status, merged_into_id FROM members")
    ):
        for c in (merged, queued):
            c.find(mid)
            if status == "merged" and into is not None:
                c.union(mid, into)
    for a, b in conn.execute(
        sa.text("SELECT member_id, other_member_id FROM identity_reviews WHERE status = 'pending'")
    ):
        queued.union(a, b)
    return Outcome(
        merged={m: merged.find(m) for m in list(merged.parent)},
        queued={m: queued.find(m) for m in list(queued.parent)},
    )


def pairs_of(groups: Mapping[K, int]) -> set[tuple[K, K]]:
    """Every pair of keys in the same group, (smaller, larger)."""
    by_group: dict[int, list[K]] = defaultdict(list)
    for key, group in groups.items():
        by_group[group].append(key)
    return {
        (a, b) if a < b else (b, a)  # type: ignore[operator]
        for keys in by_group.values()
        for i, a in enumerate(keys)
        for b in keys[i + 1 :]
    }


def scores(found: set[tuple[K, K]], truth: set[tuple[K, K]]) -> tuple[float, float, float]:
    """Precision, recall and F1 of found pairs against the true ones."""
    hits = len(found & truth)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return precision, recall, f1
