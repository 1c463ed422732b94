"""What the UI's forms send, read as the use cases want it: a refusal names the field."""

from __future__ import annotations

from typing import Any

from omo.shared.errors import ValidationFailed


def whole_number(value: Any, field: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValidationFailed("a whole number", field=field) from None
