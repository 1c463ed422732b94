"""Domain errors: raised by use cases, turned into HTTP answers by the API layer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class DomainError(Exception):
    """A request the domain refuses; `field` names the input at fault when there is one.

    `message` is English. A message made of values (an amount, a date, a code) has a `code` of
    its own and those values in `ctx` (JSON values: amounts as strings, moments in ISO 8601), so
    a till can say it in its own language (web/refusals.py) — as Pydantic's errors carry ctx."""

    status_code = 422
    code = "invalid"

    def __init__(
        self, message: str, *, field: str | None = None, code: str | None = None,
        ctx: Mapping[str, Any] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.message = message
        self.field = field
        self.ctx: dict[str, Any] = dict(ctx or {})
        if code:
            self.code = code

    def detail(self, *, prefix: tuple[str | int, ...] = ("body",)) -> dict[str, Any]:
        """The API's shape of this refusal: {"loc", "msg", "type"} and "ctx" when it has
        values. `loc` starts with `prefix` unless `field` names a part of the request itself."""
        loc: list[str | int] = list(self.field.split(".")) if self.field else []
        if loc and loc[0] not in ("body", "query", "path", "header"):
            loc = [*prefix, *loc]
        detail: dict[str, Any] = {"loc": loc, "msg": self.message, "type": self.code}
        if self.ctx:
            detail["ctx"] = self.ctx
        return detail


class ValidationFailed(DomainError):
    status_code = 422
    code = "invalid"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class Gone(DomainError):
    status_code = 410
    code = "gone"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"
