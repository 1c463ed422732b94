"""What an import is made of and what it reports (shared by validation and writing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from omo.members.identifiers import Identifier
from omo.transfer.shapes import Record, RowError


class ImportRefused(Exception):
    """The file was refused whole; nothing was written."""

    def __init__(self, message: str, errors: Sequence[RowError] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.errors = list(errors)


@dataclass
class ImportReport:
    kind: str
    shape: str
    rows: int = 0
    records: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected_rows: int = 0
    bulk: int = 0  # orders written on the bulk path
    cores: int = 1  # processes that shaped and validated the orders (orderfacts.read_orders)
    seconds: float = 0.0
    errors: list[RowError] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.rows / self.seconds if self.seconds else 0.0
        cores = f", validated on {self.cores} cores" if self.cores > 1 else ""
        return (
            f"import {self.kind} ({self.shape}): rows={self.rows} records={self.records} "
            f"created={self.created} updated={self.updated} unchanged={self.unchanged} "
            f"rejected_rows={self.rejected_rows} in {self.seconds:.1f}s ({rate:,.0f} rows/s"
            f"{cores})"
        )


@dataclass
class ShapedElsewhere:
    """A record a forked child shaped: the rows it spans are known here, and the record is
    shaped again here only when something needs it (an error to place, the identity use case)."""

    rows: list[int]
    shape: Callable[[], Record]


@dataclass
class Valid:
    source: Record | ShapedElsewhere
    model: Any
    idents: list[Identifier] = field(default_factory=list)
    digest: str = ""
    member_ref: Identifier | None = None
    # an order the database already held, with this content, when the file was checked
    recorded: bool = False

    @property
    def record(self) -> Record:
        if isinstance(self.source, ShapedElsewhere):
            self.source = self.source.shape()
        return self.source

    @property
    def rows(self) -> list[int]:
        """The file rows the record came from."""
        return self.source.rows

    def error(self, field: str, message: str) -> RowError:
        """An error about one of the record's fields, at the file's row and column (the record
        is asked for only here: one shaped in a child is shaped again for it)."""
        row, column = self.record.locate((field,))
        return RowError(row, column, message)


Progress = Callable[[int], None]


def chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for n in range(0, len(items), size):
        yield list(items[n : n + size])


def field_path(path: str | None) -> list[Any]:
    parts: list[Any] = []
    for p in (path or "").split("."):
        parts.append(int(p) if p.isdigit() else p)
    return parts
