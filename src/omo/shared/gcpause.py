"""Pausing Python's cyclic garbage collector around bulk work.

A bulk import or load keeps millions of small objects alive at once (rows, records, validated
models). The collector's generations are sized for ordinary programs, so it runs again and
again and walks every one of them each time: measured on `bench/import.py`, 40 % of an import
of orders and 60 % of its validation. Bulk work makes almost no cyclic garbage, and what it
makes is collected as soon as the collector runs again.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection inside the block; nests, and restores the state it found."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
