"""A store's day (日結): what OMO recorded for one store on one of the brand's days, and the
till's receipt journal matched against it, receipt by receipt.

A till that was offline queues its sales and sends them later; one that never arrives has
earned no points and moved no level, and nobody notices until the member asks. At closing the
till (or the back office, from the POS's journal) sends the day's receipt numbers and totals;
OMO answers those it never recorded (send them again: a sale is idempotent on its number),
those recorded at another store, on another day or under another channel, those whose total
differs, and those OMO holds that the till did not list. Read only: nothing is written.

The day is the brand's calendar day (Settings.time_zone), midnight to midnight; a sale is on
the day it was made (ordered_at), a refund on the day it was given, at the store whose till
gave it (跨店退貨: not always the sale's)."""

from __future__ import annotations

from omo.checkout.dayclose.closing import close_day
from omo.checkout.dayclose.days import parse_day, today, window
from omo.checkout.dayclose.journal import parse_journal, reconcile, reconcile_channel
from omo.checkout.dayclose.reopening import reopen_day
from omo.checkout.dayclose.report import store_day
from omo.checkout.dayclose.schemas import (
    MAX_RECEIPTS,
    Reconciliation,
    ReopenIn,
    StoreDay,
    StoresDay,
    TillJournal,
)
from omo.checkout.dayclose.stores import stores_day

__all__ = [
    "MAX_RECEIPTS",
    "Reconciliation",
    "ReopenIn",
    "StoreDay",
    "StoresDay",
    "TillJournal",
    "close_day",
    "parse_day",
    "parse_journal",
    "reconcile",
    "reconcile_channel",
    "reopen_day",
    "store_day",
    "stores_day",
    "today",
    "window",
]  # fmt: skip
