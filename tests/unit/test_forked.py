"""shared.forked: parts run in real forked children come back in order; a child that fails or
dies has its part run again in the parent; a failure in the parent ends the children.

The forking cases run in a fresh interpreter (tests.conftest.fresh_python): this one holds
threads that earlier tests left, and forked forks only from a process with one thread."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omo.shared import forked
from tests.conftest import fresh_python

needs_cores = pytest.mark.skipif(
    forked.cores() < 2 and os.environ.get("CI") != "true",
    reason="needs two cores (CI machines have them)",
)


@given(st.lists(st.integers(), max_size=50), st.integers(min_value=1, max_value=8))
def test_parts_cover_the_items_in_order_and_nearly_evenly(items: list[int], n: int) -> None:
    runs = forked.parts(items, n)
    assert [x for run in runs for x in run] == items
    assert len(runs) == max(1, min(n, len(items)))
    sizes = [len(r) for r in runs]
    assert max(sizes) - min(sizes) <= 1


@needs_cores
def test_parts_after_the_first_run_in_children_and_come_back_in_order() -> None:
    out = fresh_python("""
        import json, os
        from omo.shared import forked
        assert forked.can_fork()
        work = lambda part, offset: (os.getpid(), offset, [x * 2 for x in part])
        print(json.dumps([os.getpid(), forked.map_parts(work, list(range(10)), 3)]))
    """)
    parent, results = out
    assert [r[1] for r in results] == [0, 4, 7]
    assert [x for r in results for x in r[2]] == [x * 2 for x in range(10)]
    pids = [r[0] for r in results]
    assert pids[0] == parent
    assert parent not in pids[1:] and len(set(pids)) == 3


@needs_cores
def test_a_child_that_dies_has_its_part_run_here() -> None:
    out = fresh_python("""
        import json, os
        from omo.shared import forked
        parent = os.getpid()

        def work(part, offset):
            if os.getpid() != parent:
                os._exit(3)  # killed, out of memory …: no answer at all
            return sum(part)

        print(json.dumps(forked.map_parts(work, list(range(100)), 2)))
    """)
    assert out == [sum(range(50)), sum(range(50, 100))]


@needs_cores
def test_an_error_in_a_child_surfaces_as_raised_here() -> None:
    out = fresh_python("""
        import json, os
        from omo.shared import forked
        parent = os.getpid()

        def work(part, offset):
            if offset > 0:
                raise ValueError(f"bad item at {offset} in {'child' if os.getpid() != parent else 'parent'}")
            return len(part)

        try:
            forked.map_parts(work, list(range(10)), 2)
        except ValueError as exc:
            print(json.dumps(str(exc)))
    """)
    assert out == "bad item at 5 in parent"


@needs_cores
def test_an_error_here_ends_the_children() -> None:
    out = fresh_python("""
        import json, multiprocessing, time
        from omo.shared import forked

        def work(part, offset):
            if offset == 0:
                raise ValueError("the first part is bad")
            time.sleep(30)  # a child still at work when the parent gives up
            return 0

        started = time.perf_counter()
        try:
            forked.map_parts(work, list(range(10)), 2)
        except ValueError:
            pass
        print(json.dumps([len(multiprocessing.active_children()), time.perf_counter() - started]))
    """)
    assert out[0] == 0 and out[1] < 10


@needs_cores
def test_the_first_part_comes_while_the_children_work_and_closing_ends_them() -> None:
    out = fresh_python("""
        import json, multiprocessing, time
        from omo.shared import forked

        def work(run, k):
            if k:
                time.sleep(30)  # a child's run, still at work
            return list(run)

        started = time.perf_counter()
        results = forked.iter_runs(work, [list(range(5)), list(range(5, 10))], 2)
        first = next(results)
        working = len(multiprocessing.active_children())
        results.close()  # the caller found what it needed (or gave up)
        print(json.dumps([first, working, len(multiprocessing.active_children()),
                          time.perf_counter() - started]))
    """)
    first, working, left, seconds = out
    assert (first, working, left) == ([0, 1, 2, 3, 4], 1, 0) and seconds < 10


def test_one_part_runs_here_without_forking() -> None:
    parent = os.getpid()
    assert forked.map_parts(lambda part, off: (os.getpid(), list(part)), [1, 2], 1) == [
        (parent, [1, 2])
    ]


def test_a_process_with_threads_does_not_fork() -> None:
    import threading

    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not forked.can_fork()
        pids = forked.map_parts(lambda part, off: os.getpid(), list(range(10)), 2)
        assert pids == [os.getpid(), os.getpid()]
    finally:
        stop.set()
        other.join()


@needs_cores
def test_a_child_with_several_runs_sends_each_as_it_is_done() -> None:
    """The first child's results come while it still works on its later runs; a child that
    fails at its second run has that run and its later ones worked here."""
    out = fresh_python("""
        import json, os, time
        from omo.shared import forked
        parent = os.getpid()

        def work(run, k):
            if os.getpid() != parent:
                if k == 4:
                    raise ValueError("the child fails here")
                time.sleep(0.3 * (k == 2))
            return (k, os.getpid() == parent, time.perf_counter(), sum(run))

        runs = [list(range(10 * k, 10 * k + 10)) for k in range(6)]
        got = [(*r, time.perf_counter()) for r in forked.iter_runs(work, runs, 3)]
        print(json.dumps(got))
    """)
    assert [r[0] for r in out] == list(range(6))
    assert [r[3] for r in out] == [sum(range(10 * k, 10 * k + 10)) for k in range(6)]
    here = [r[1] for r in out]
    assert here == [True, False, False, False, True, True]  # child 1: runs 1-3; 2: 4 (fails), 5
    # run 1 reached the parent before the child had finished run 2 (0.3 s of work)
    assert out[1][4] < out[2][2]
