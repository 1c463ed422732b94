"""shared.forked: parts run in real forked children come back in order; a child that fails or
dies has its part run again in the parent."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omo.shared import forked

needs_fork = pytest.mark.skipif(
    not forked.can_fork() and os.environ.get("CI") != "true",
    reason="needs fork, two cores and a process with one thread",
)


@given(st.lists(st.integers(), max_size=50), st.integers(min_value=1, max_value=8))
def test_parts_cover_the_items_in_order_and_nearly_evenly(items: list[int], n: int) -> None:
    runs = forked.parts(items, n)
    assert [x for run in runs for x in run] == items
    assert len(runs) == max(1, min(n, len(items)))
    sizes = [len(r) for r in runs]
    assert max(sizes) - min(sizes) <= 1


@needs_fork
def test_parts_after_the_first_run_in_children_and_come_back_in_order() -> None:
    parent = os.getpid()

    def work(part: Sequence[int], offset: int) -> tuple[int, int, list[int]]:
        return os.getpid(), offset, [x * 2 for x in part]

    results = forked.map_parts(work, list(range(10)), 3)
    assert [r[1] for r in results] == [0, 4, 7]
    assert [x for r in results for x in r[2]] == [x * 2 for x in range(10)]
    pids = [r[0] for r in results]
    assert pids[0] == parent
    assert parent not in pids[1:] and len(set(pids)) == 3


@needs_fork
def test_a_child_that_dies_has_its_part_run_here() -> None:
    parent = os.getpid()

    def work(part: Sequence[int], offset: int) -> int:
        if os.getpid() != parent:
            os._exit(3)  # killed, out of memory … : no answer at all
        return sum(part)

    assert forked.map_parts(work, list(range(100)), 2) == [sum(range(50)), sum(range(50, 100))]


@needs_fork
def test_an_error_in_a_child_surfaces_as_raised_here() -> None:
    def work(part: Sequence[int], offset: int) -> int:
        if offset > 0:
            raise ValueError(f"bad item at {offset}")
        return len(part)

    with pytest.raises(ValueError, match="bad item at 5"):
        forked.map_parts(work, list(range(10)), 2)


def test_one_part_runs_here_without_forking() -> None:
    parent = os.getpid()
    assert forked.map_parts(lambda part, off: (os.getpid(), list(part)), [1, 2], 1) == [
        (parent, [1, 2])
    ]


@needs_fork
def test_an_error_here_ends_the_children() -> None:
    import multiprocessing

    def work(part: Sequence[int], offset: int) -> int:
        if offset == 0:
            raise ValueError("the first part is bad")
        import time

        time.sleep(30)  # a child still at work when the parent gives up
        return 0

    with pytest.raises(ValueError, match="first part"):
        forked.map_parts(work, list(range(10)), 2)
    assert multiprocessing.active_children() == []
