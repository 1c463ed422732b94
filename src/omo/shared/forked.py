"""Spreading CPU-bound work over the machine's cores with forked children.

For pure work over data the caller already holds (validating the rows of an import): a forked
child sees that data as it is, so nothing is pickled on the way in, and only its results come
back through a pipe, each as soon as it is done (`iter_runs`), so that the caller can use them
while the children work on. The caller does the first part itself, so two cores take one child.

Forking a process that runs other threads can copy a lock in the state another thread left
it, so this forks only from a process with one thread (the CLI, a batch job); elsewhere, and
on platforms without fork, every part runs here, one after the other. A child that fails for
any reason has its parts run again here, where its exception surfaces as it would have.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_HELPERS_STOPS: list[Callable[[], None]] = []


def stops_helpers(stop: Callable[[], None]) -> None:
    """Register how to end helper threads that start again when next needed (SQLite's log
    copier): can_fork ends them rather than refuse to fork."""
    _HELPERS_STOPS.append(stop)


def can_fork() -> bool:
    if "fork" not in multiprocessing.get_all_start_methods() or cores() < 2:
        return False
    for stop in _HELPERS_STOPS:
        stop()
    return threading.active_count() == 1


def parts(items: Sequence[T], n: int) -> list[Sequence[T]]:
    """items cut into n runs of nearly equal length, in order (fewer when items are few)."""
    n = max(1, min(n, len(items)))
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for k in range(n):
        end = start + size + (1 if k < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def map_parts(work: Callable[[Sequence[T], int], R], items: Sequence[T], n: int) -> list[R]:
    """[work(part, offset) for each of n parts of items], the parts after the first in forked
    children when this process may fork; results in the parts' order.

    `offset` is the part's first position in items. work must be pure: what it changes in a
    child's memory is lost with the child.
    """
    runs = parts(items, n)
    offsets = [sum(len(r) for r in runs[:k]) for k in range(len(runs))]
    return list(iter_runs(lambda run, k: work(run, offsets[k]), runs, len(runs)))


def iter_runs(
    work: Callable[[T, int], R], runs: Sequence[T], processes: int
) -> Generator[R, None, None]:
    """[work(run, k) for each run k], one result at a time in the runs' order: the first run
    worked here, the others shared out in order between processes - 1 forked children (when
    this process may fork), each of which sends back each of its runs' results as soon as it
    has it, so that the caller can use them while the children still work. A child that fails
    has its runs from the failed one on worked here. Closing the iterator early, or an
    exception here, ends the children."""
    children = min(processes, len(runs)) - 1
    if children < 1 or not can_fork():
        for k, run in enumerate(runs):
            yield work(run, k)
        return
    ctx = multiprocessing.get_context("fork")
    rest = list(enumerate(runs))[1:]
    size, extra = divmod(len(rest), children)
    started = []
    for c in range(children):
        group, rest = rest[: size + (c < extra)], rest[size + (c < extra) :]
        receiver, sender = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_child, args=(work, group, sender), daemon=True)
        child.start()
        sender.close()
        started.append((child, receiver, group))
    try:
        yield work(runs[0], 0)
        while started:
            child, receiver, group = started[0]
            for i in range(len(group)):
                try:
                    ok, value = receiver.recv()
                except EOFError:  # the child died before it answered
                    ok, value = False, None
                if not ok:
                    child.terminate()
                    for k, run in group[i:]:
                        yield work(run, k)
                    break
                yield value
            started.pop(0)
            receiver.close()
            child.join()
    finally:
        for child, receiver, _group in started:
            child.terminate()
            child.join()
            receiver.close()


def _child(work: Callable[[Any, int], Any], group: list[tuple[int, Any]], sender: Any) -> None:
    """Works the runs one after the other; a thread sends each result as it comes, so that
    the next run is worked while the parent has not yet read the last (a pipe holds 64 KiB)."""
    results: queue.SimpleQueue[tuple[bool, Any] | None] = queue.SimpleQueue()

    def send() -> None:
        while (item := results.get()) is not None:
            sender.send(item)
        sender.close()

    sending = threading.Thread(target=send)
    sending.start()
    for k, run in group:
        try:
            results.put((True, work(run, k)))
        except BaseException:
            results.put((False, None))
            break
    results.put(None)
    sending.join()
