"""POST /api/v1/checkout/commit answered without the framework's walk (the till's lane).

A sale is the call a till waits on and the one the server makes most. Through FastAPI it cost
about 0.7 ms of CPU besides the sale's own ~1 ms: the router's walk over the included routers,
the dependencies solved one by one, the body validated through a wrapper and the response
through another, and Starlette's session middleware. This ASGI middleware answers the sale
itself when everything about the request is plain: an API key authenticated in the last few
seconds (no database read), with its scopes and within its rate, a JSON body that validates.
Then it runs the same use case (`checkout.service.commit`, tried on the event loop first, as
`http.inline_first` does), answers a refusal as the error handler does, and serialises the
result through the route's own response field — the same bytes.

Anything else goes to the FastAPI route untouched, with the body it had: a key to read from
the database, a missing or invalid key, a missing scope, a rate exceeded, a body that is not
JSON or does not validate. Those answers (401, 403, 429, 422 with Pydantic's list) are the
framework's own, and nothing has been taken or written before the hand-over: a rate limiter's
token is taken only once the lane answers. `tests/api/test_commit_lane.py` sends the same
requests both ways and compares the answers.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omo.apikeys.service import cached_principal
from omo.checkout import service as checkout
from omo.checkout.schemas import CommitRequest
from omo.db import UnitOfWork
from omo.http import run_inline_first
from omo.settings import Settings
from omo.shared.errors import DomainError

PATH = "/api/v1/checkout/commit"


class CommitLane:
    def __init__(
        self, app: ASGIApp, *, route: APIRoute, uow: UnitOfWork, settings: Settings,
        limiter: Any,
    ) -> None:  # fmt: skip
        self.app, self.route, self.uow, self.settings = app, route, uow, settings
        self.limiter = limiter  # ops.limits.RateLimiter, the one the API's dependency takes from
        if route.response_field is None:
            raise ValueError("the commit route has no response model to serialise with")
        self.response_field = route.response_field
        self.answered = 0  # the sales it answered (the rest went to the route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, disconnected = await _body(receive)
        if disconnected:
            return
        answer = await self._answer(scope, body)
        if answer is None:
            await self.app(scope, _replay(body, receive), send)
            return
        scope["route"] = self.route  # what the metrics label the request with
        self.answered += 1
        await answer(scope, receive, send)

    async def _answer(self, scope: Scope, body: bytes) -> Response | None:
        """The answer to a plain sale; None for anything the route should answer."""
        headers = _headers(scope)
        if headers is None or not body or not _is_json(headers.get(b"content-type")):
            return None
        presented = _presented_key(headers)
        if presented is None:
            return None
        caller = cached_principal(presented)
        if caller is None:
            return None
        try:
            req = CommitRequest.model_validate(json.loads(body))
        except (ValueError, ValidationError):  # not JSON, or not a sale: the route says why
            return None
        needed = ("orders:write", "points:write") if req.points else ("orders:write",)
        if any(s not in caller.scopes for s in needed):
            return None
        if self.limiter.take(caller.name) > 0:  # refused, no token taken: the route says 429
            return None
        settings = self.settings
        try:
            result = await run_inline_first(
                checkout.commit, self.uow, req=req, principal=caller,
                currency=settings.currency, region=settings.default_region,
                unit=settings.price_unit,
            )  # fmt: skip
        except DomainError as exc:  # as http.install_error_handlers answers it
            return JSONResponse(status_code=exc.status_code, content={"detail": [exc.detail()]})
        value, errors = self.response_field.validate(result, {}, loc=("response",))
        if errors:  # as FastAPI would refuse to answer it: a bug, not a refusal
            raise ValueError(f"the sale's result does not fit its response model: {errors}")
        payload = self.response_field.serialize_json(value, by_alias=True)
        return Response(
            payload, status_code=200 if result.replayed else 201, media_type="application/json"
        )


async def _body(receive: Receive) -> tuple[bytes, bool]:
    """The request's whole body, and whether the client went away meanwhile."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body read already, then waits as the original does."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


_READ = (b"authorization", b"x-api-key", b"content-type")


def _headers(scope: Scope) -> dict[bytes, bytes] | None:
    """The headers the lane reads, by lower-case name; None if one of them is sent twice (the
    route decides what that means)."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in _READ:
            if name in found:
                return None
            found[name] = value
    return found


def _presented_key(headers: dict[bytes, bytes]) -> str | None:
    """The key as `http.principal` reads it: a Bearer credential, else X-API-Key."""
    authorization = headers.get(b"authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and credentials and " " not in credentials:
            return credentials
        if authorization:
            return None  # another scheme, or odd spacing: the route reads it
    key = headers.get(b"x-api-key")
    return key.decode("latin-1") if key else None


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json"
