"""Domain errors: raised by use cases, turned into HTTP answers by the API layer."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses; `field` names the input at fault when there is one."""

    status_code = 422
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class ValidationFailed(DomainError):
    status_code = 422
    code = "invalid"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"
