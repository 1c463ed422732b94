"""Cutting an import's rows into runs of whole orders, one per core (transfer/orderfacts.py)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from omo.transfer.formats import CsvTable, DictTable
from omo.transfer.orderfacts import _apart, _cuts

HEADER = ["channel", "external_id", "sku"]


def table(ids: list[int]) -> CsvTable:
    # cells as files hold them: padded, or quoted against formulas (an id such as -5), which
    # name the same order as the plain cell
    spelled = ["-{}", " -{} ", "'-{}"]
    return CsvTable(
        HEADER, [(n, ["pos", spelled[n % 3].format(i), "SKU"]) for n, i in enumerate(ids, 2)]
    )


@given(st.lists(st.integers(0, 6), min_size=0, max_size=60).map(sorted), st.integers(1, 4))
def test_runs_cover_the_rows_in_order_and_never_split_an_order(ids: list[int], n: int) -> None:
    cuts = _cuts(table(ids), "omo", n)
    assert [i for a, b in cuts for i in range(a, b)] == list(range(len(ids)))
    assert len(cuts) <= max(n, 1)
    for (_, stop), (start, _) in itertools.pairwise(cuts):
        assert stop == start and ids[start - 1] != ids[start]  # a cut falls between orders


def test_the_cut_moves_down_to_where_the_order_changes() -> None:
    rows = table([1, 2, 2, 2, 2, 3, 4, 5])
    assert _cuts(rows, "omo", 2) == [(0, 5), (5, 8)]
    assert _cuts(rows, "omo", 1) == [(0, 8)]
    assert _cuts(table([7, 7, 7, 7]), "omo", 2) == [(0, 4)]  # one order: one run


def test_shapes_name_their_order_column_or_run_whole() -> None:
    shopify = DictTable([(n, {"Name": f"#{n // 2}", "Lineitem sku": "A"}) for n in range(2, 12)])
    assert _cuts(shopify, "shopify", 2) == [(0, 6), (6, 10)]
    shopee = DictTable([(n, {"訂單編號": f"S{n // 3}"}) for n in range(2, 14)])
    assert _cuts(shopee, "shopee", 2) == [(0, 7), (7, 12)]
    unknown = DictTable([(n, {"something": "else"}) for n in range(2, 14)])
    assert _cuts(unknown, "shopee", 2) == [(0, 12)]


def test_an_order_in_two_runs_is_found() -> None:
    assert not _apart([[("pos", "P-1"), ("pos", "P-2")], [("pos", "P-3")]])
    assert _apart([[("pos", "P-1"), ("pos", "P-2")], [("pos", "P-3"), ("pos", "P-1")]])
    assert not _apart([[], []])


def test_the_first_run_takes_its_share_and_the_others_split_the_rest() -> None:
    rows = table(list(range(100)))  # one row per order: every cut stays where it falls
    assert _cuts(rows, "omo", 2, first_share=0.4) == [(0, 40), (40, 100)]
    assert _cuts(rows, "omo", 3, first_share=0.4) == [(0, 40), (40, 70), (70, 100)]
    assert _cuts(rows, "omo", 2) == [(0, 50), (50, 100)]


def test_the_other_runs_are_pieces_of_at_most_piece_rows() -> None:
    rows = table(list(range(100)))
    assert _cuts(rows, "omo", 2, first_share=0.1, piece_rows=20) == [
        (0, 10), (10, 28), (28, 46), (46, 64), (64, 82), (82, 100),
    ]  # fmt: skip
    assert _cuts(rows, "omo", 1, first_share=0.1, piece_rows=20) == [(0, 100)]
