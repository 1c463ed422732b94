"""What the UI's forms send, read as the use cases want it: a refusal names the field."""

from __future__ import annotations

from typing import Any

from omo.shared.errors import ValidationFailed
from omo.shared.schemas import MAX_ID


def whole_number(value: Any, field: str) -> int:
    """A form's whole number (an id, a quantity, points), at most MAX_ID either way: a larger
    id reached the database and came back a 500 (out of SQLite's or PostgreSQL's integer)."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValidationFailed("a whole number", field=field) from None
    if abs(number) > MAX_ID:
        raise ValidationFailed("a number too large", field=field)
    return number
