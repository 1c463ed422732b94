"""Reading rows out of files and writing them back: CSV, XLSX, JSONL and Parquet.

Readers yield (row number as a person would count it in the file, row dict). Flat formats give
strings (or None for empty cells); JSONL gives whatever the JSON holds (nested orders too).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

FORMATS = ("csv", "xlsx", "jsonl", "parquet")
Row = dict[str, Any]
# a cell starting with one of these runs as a formula in Excel/Sheets (CSV injection)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class UnreadableFile(ValueError):
    """The file cannot be read as the format it claims to be."""


def _nul(where: str) -> UnreadableFile:
    # PostgreSQL's text cannot hold NUL: a row with one was a DataError at the write, after
    # the file had been checked; SQLite kept it
    return UnreadableFile(f"{where} holds the NUL character (\\u0000), which no field takes")


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    return isinstance(value, list) and any(_holds_nul(v) for v in value)


def detect_format(path: Path, given: str | None) -> str:
    if given:
        if given not in FORMATS:
            raise UnreadableFile(f"unknown format {given!r}; expected one of {', '.join(FORMATS)}")
        return given
    suffix = path.suffix.lower().lstrip(".")
    aliases = {"ndjson": "jsonl", "json": "jsonl", "pq": "parquet", "xlsm": "xlsx", "tsv": "csv"}
    fmt = aliases.get(suffix, suffix)
    if fmt not in FORMATS:
        raise UnreadableFile(
            f"cannot tell the format of {path.name}; name it .csv/.xlsx/.jsonl/.parquet "
            "or pass --format"
        )
    return fmt


def read_table(path: Path, fmt: str, *, encoding: str | None = None) -> RowTable:
    """Every row of the file, read; each becomes a row dict when `rows` is iterated."""
    if not path.is_file():
        raise UnreadableFile(f"no such file: {path}")
    if fmt == "csv":
        return _csv(path, encoding)
    reader = _xlsx if fmt == "xlsx" else _jsonl if fmt == "jsonl" else _parquet
    return DictTable(list(reader(path)))


class RowTable:
    """A file's rows, read but not yet made into row dicts: the processes that shape an import
    take a slice each and build its dicts themselves (transfer/orderfacts.py)."""

    def __len__(self) -> int:
        raise NotImplementedError

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, Row]]:
        """(row number, row dict) of the rows start:stop."""
        raise NotImplementedError

    def keys(
        self, columns: Sequence[str], start: int = 0, stop: int | None = None
    ) -> list[tuple[Any, ...]]:
        """The values of rows start:stop in these columns, as their row dicts hold them."""
        raise NotImplementedError

    def names(self) -> list[str]:
        """The columns (of the first row, where rows bring their own)."""
        raise NotImplementedError


class DictTable(RowTable):
    """Rows read as dicts already (XLSX, JSONL, Parquet)."""

    def __init__(self, numbered: list[tuple[int, Row]]) -> None:
        self.numbered = numbered

    def __len__(self) -> int:
        return len(self.numbered)

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, Row]]:
        return iter(self.numbered[start:stop])

    def keys(
        self, columns: Sequence[str], start: int = 0, stop: int | None = None
    ) -> list[tuple[Any, ...]]:
        return [tuple(map(row.get, columns)) for _, row in self.numbered[start:stop]]

    def names(self) -> list[str]:
        return list(self.numbered[0][1]) if self.numbered else []


class CsvTable(RowTable):
    """CSV rows as the csv module reads them, lists of cells under one header."""

    def __init__(self, names: list[str], numbered: list[tuple[int, list[str]]]) -> None:
        self.header = names
        self.numbered = numbered

    def __len__(self) -> int:
        return len(self.numbered)

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, Row]]:
        names = self.header
        for n, cells in self.numbered[start:stop]:
            # _value inline: a call per cell is a tenth of shaping an import
            yield (
                n,
                {
                    k: _uncell(v) if "'" in v else v.strip() or None
                    for k, v in zip(names, cells, strict=False)
                },
            )

    def keys(
        self, columns: Sequence[str], start: int = 0, stop: int | None = None
    ) -> list[tuple[Any, ...]]:
        at = [self.header.index(c) if c in self.header else None for c in columns]
        return [
            tuple(_value(cells[i]) if i is not None and i < len(cells) else None for i in at)
            for _, cells in self.numbered[start:stop]
        ]

    def names(self) -> list[str]:
        return self.header


def _value(cell: str) -> str | None:
    # _uncell only where a quote could be our formula neutralisation: most cells are plain
    return _uncell(cell) if "'" in cell else cell.strip() or None


def _csv(path: Path, encoding: str | None) -> CsvTable:
    raw = path.read_bytes()
    text = None
    if encoding:
        try:
            text = raw.decode(encoding)
        except LookupError:
            raise UnreadableFile(f"unknown text encoding {encoding!r}") from None
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise UnreadableFile(f"line {line} of {path.name} is not {encoding} text") from None
    else:  # Excel in Taiwan saves CSV as Big5 (cp950); else UTF-8, often with a BOM
        for enc in ("utf-8-sig", "cp950"):
            try:
                text = raw.decode(enc)
                break
            except UnicodeDecodeError:
                continue
        if text is None:
            raise UnreadableFile(f"{path.name} is neither UTF-8 nor Big5 text; pass --encoding")
    if (at := text.find("\x00")) >= 0:
        raise _nul(f"line {text.count(chr(10), 0, at) + 1}")
    dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
    reader = csv.reader(io.StringIO(text, newline=""), dialect=dialect)
    header = next(reader, None)
    if not header:
        raise UnreadableFile(f"{path.name} is empty: no header row")
    names = [h.strip() for h in header]
    _unique_header(names, path)
    numbered = []
    width = len(names)
    for n, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > width:
            raise UnreadableFile(f"row {n} has {len(cells)} cells but the header has {width}")
        numbered.append((n, cells))
    return CsvTable(names, numbered)


def _uncell(text: str) -> str | None:
    """A CSV cell's value: stripped, None when empty, our formula neutralisation undone."""
    text = text.strip()
    if text[:1] == "'" and text[1:2] in _FORMULA_STARTS:
        text = text[1:]
    return text or None


def _xlsx(path: Path) -> Iterator[tuple[int, Row]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a bad file
        raise UnreadableFile(f"{path.name} is not a readable XLSX workbook: {exc}") from None
    try:
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        if not header:
            raise UnreadableFile(f"{path.name}: the first sheet is empty")
        names = ["" if h is None else str(h).strip() for h in header]
        _unique_header([n for n in names if n], path)
        for n, cells in enumerate(rows, start=2):
            row = {k: _cell(v) for k, v in zip(names, cells, strict=False) if k}
            if any(v is not None for v in row.values()):
                yield n, row
    finally:
        book.close()


def _cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value
    text = str(value).strip()
    return text or None


def _jsonl(path: Path) -> Iterator[tuple[int, Row]]:
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            try:  # JSON is UTF-8 (RFC 8259); a BOM before the first line is forgiven
                line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError:
                raise UnreadableFile(f"line {n} is not UTF-8 text, as JSON must be") from None
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UnreadableFile(f"line {n} is not JSON: {exc.msg}") from None
            if not isinstance(value, dict):
                raise UnreadableFile(f"line {n} is not a JSON object")
            if "u0000" in line and _holds_nul(value):  # JSON writes NUL as \u0000
                raise _nul(f"line {n}")
            yield n, value


def _parquet(path: Path) -> Iterator[tuple[int, Row]]:
    try:
        table = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UnreadableFile(f"{path.name} is not a Parquet file: {exc}") from None
    n = 1
    for batch in table.iter_batches(batch_size=10_000):
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                found = pc.index(pc.match_substring(column, "\x00"), True).as_py()
                if found >= 0:
                    raise _nul(f"row {n + 1 + found}, column {name}")
        for row in batch.to_pylist():
            n += 1
            yield n, {k: _cell(v) if isinstance(v, float | str) else v for k, v in row.items()}


def _unique_header(names: Sequence[str], path: Path) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UnreadableFile(f"{path.name}: column {name!r} appears twice in the header")
        seen.add(name)


def write_table(table: pa.Table, path: Path) -> None:
    """Write Parquet or CSV by the file's suffix."""
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        pq.write_table(table, path)
    elif suffix == ".csv":
        write_csv(path, table.column_names, (r.values() for r in table.to_pylist()))
    else:
        raise UnreadableFile(f"export to .parquet or .csv, not {suffix or 'no suffix'}")


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Iterable[Any]]) -> None:
    """UTF-8 CSV with a BOM (so Excel reads the Chinese), cells that could run as spreadsheet
    formulas neutralised."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        for row in rows:
            out.writerow([_inert(v) for v in row])


def csv_lines(header: Sequence[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The same CSV as write_csv, line by line, for a streamed download."""
    buffer = io.StringIO()
    out = csv.writer(buffer)
    yield "\ufeff"
    for row in itertools.chain([header], rows):
        out.writerow([_inert(v) for v in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _inert(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS:
        return "'" + value
    return value
