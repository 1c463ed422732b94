"""The till's calls answered without the framework's walk: POST /api/v1/checkout/commit and
/checkout/quote (the till's lane).

A sale is the call a till waits on and the one the server makes most, and a till quotes the
basket before it. Through FastAPI a sale cost about 0.55 ms of CPU besides its own ~1 ms, a
quote about 0.35 ms besides its own 0.65 ms: the router's walk over the included routers, the
dependencies solved one by one, the body validated through a wrapper and the response through
another, and Starlette's session middleware. This ASGI middleware answers them itself when
everything about the request is plain: an API key authenticated in the last few seconds (no
database read), with its scopes and within its rate, a JSON body that validates. Then it runs
the same use case (`checkout.service.commit` or `quote`, tried on the event loop first, as
`http.inline_first` does), answers a refusal as the error handler does, and serialises the
result through the route's own response field — the same bytes.

Anything else goes to the FastAPI route untouched, with the body it had: a key to read from
the database, a missing or invalid key, a missing scope, a rate exceeded, a body that is not
JSON or does not validate. Those answers (401, 403, 429, 422 with Pydantic's list, 400 for a
body FastAPI cannot parse) are the framework's own, and nothing has been taken or written
before the hand-over: a rate limiter's token is taken only once the lane answers.
`tests/api/test_till_lane.py` sends the same requests both ways and compares the answers and
the databases.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omo.apikeys.service import Principal, cached_principal
from omo.checkout import api
from omo.checkout import service as checkout
from omo.checkout.schemas import CommitRequest, QuoteRequest
from omo.db import NoWriteTurn, UnitOfWork
from omo.http import run_inline_first
from omo.ops.unavailable import database_unavailable, unavailable
from omo.settings import Settings
from omo.shared.errors import DomainError
from omo.shared.secrets import secret_key

API = "/api/v1"


@dataclass(frozen=True)
class Plain:
    """A route the lane answers: its request model, the scopes a request needs, and the use
    case, which gives the result and its status."""

    route: APIRoute
    model: type[BaseModel]
    scopes: Callable[[Any], tuple[str, ...]]
    run: Callable[[Any, Principal], tuple[Any, int]]


def till_routes(uow: UnitOfWork, settings: Settings) -> list[Plain]:
    """The till's two calls a sale: the quote before it and the commit."""

    def commit(req: CommitRequest, caller: Principal) -> tuple[Any, int]:
        result = checkout.commit(
            uow, req=req, principal=caller, currency=settings.currency,
            region=settings.default_region, unit=settings.price_unit,
        )  # fmt: skip
        return result, 200 if result.replayed else 201

    def quote(req: QuoteRequest, _caller: Principal) -> tuple[Any, int]:
        read = checkout.quote(uow, req=req, region=settings.default_region,
                              secret=secret_key(settings), unit=settings.price_unit)  # fmt: skip
        return read, 200

    return [
        Plain(api.route_of("/checkout/commit"), CommitRequest,
              lambda r: ("orders:write", "points:write") if r.points else ("orders:write",),
              commit),
        Plain(api.route_of("/checkout/quote"), QuoteRequest, lambda _r: ("members:read",), quote),
    ]  # fmt: skip


class TillLane:
    def __init__(self, app: ASGIApp, *, routes: list[Plain], limiter: Any) -> None:
        self.app = app
        self.limiter = limiter  # ops.limits.RateLimiter, the one the API's dependency takes from
        self.routes = {API + p.route.path: p for p in routes}
        for path, plain in self.routes.items():
            if plain.route.response_field is None or "POST" not in (plain.route.methods or ()):
                raise ValueError(f"{path}: the lane answers POSTs with a response model")
        self.answered: Counter[str] = Counter()  # by path; the rest went to the route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        plain = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if plain is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, disconnected = await _body(receive)
        if disconnected:
            return
        answer = await self._answer(plain, scope, body)
        if answer is None:
            await self.app(scope, _replay(body, receive), send)
            return
        scope["route"] = plain.route  # what the metrics label the request with
        self.answered[scope["path"]] += 1
        await answer(scope, receive, send)

    async def _answer(self, plain: Plain, scope: Scope, body: bytes) -> Response | None:
        """The answer to a plain request; None for anything the route should answer."""
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
            req = plain.model.model_validate(json.loads(body))
        except Exception:  # not JSON (or nested past the parser), or not valid: the route says
            return None  # why (422, or 400 where FastAPI cannot parse it)
        if any(s not in caller.scopes for s in plain.scopes(req)):
            return None
        if self.limiter.take(caller.name) > 0:  # refused, no token taken: the route says 429
            return None
        try:
            result, status = await run_inline_first(plain.run, req, caller)
        except DomainError as exc:  # as http.install_error_handlers answers it
            return JSONResponse(status_code=exc.status_code, content={"detail": [exc.detail()]})
        except (DBAPIError, NoWriteTurn) as exc:
            if isinstance(exc, DBAPIError) and not database_unavailable(exc):
                raise
            return unavailable(exc, scope["path"])
        field = plain.route.response_field
        assert field is not None  # checked at start
        value, errors = field.validate(result, {}, loc=("response",))
        if errors:  # as FastAPI would refuse to answer it: a bug, not a refusal
            raise ValueError(f"the result does not fit its response model: {errors}")
        payload = field.serialize_json(value, by_alias=True)
        return Response(payload, status_code=status, media_type="application/json")


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
