"""HTTP plumbing shared by the routers: the unit of work, API-key auth, error answers."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError

from omo.apikeys.service import Principal, authenticate, cached_principal
from omo.db import NoWriteTurn, UnitOfWork, WouldWait, without_waiting
from omo.ops.unavailable import database_unavailable, report, unavailable
from omo.settings import Settings
from omo.shared.errors import DomainError

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer omo_…`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="or `X-API-Key: omo_…`")


# The dependencies are `async def` where they only read memory: FastAPI runs a plain `def`
# dependency in its thread pool, one hand-off (and a wait for the GIL) per dependency per call.


async def get_uow(request: Request) -> UnitOfWork:
    uow: UnitOfWork = request.app.state.uow
    return uow


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def principal(
    request: Request,
    uow: Annotated[UnitOfWork, Depends(get_uow)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> Principal:
    presented = bearer.credentials if bearer else header
    if not presented:
        raise HTTPException(
            401,
            "an API key is required (Authorization: Bearer omo_… or X-API-Key)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    found = cached_principal(presented)
    if found is None:  # a key not seen in the last seconds: its row is read in the pool
        found = await run_in_threadpool(authenticate, uow, presented)
    if found is None:
        raise HTTPException(
            401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    wait = request.app.state.rate_limiter.take(found.name)
    if wait > 0:
        raise HTTPException(
            429, f"this API key is over its request rate; retry in {wait:.1f} s",
            headers={"Retry-After": str(max(1, round(wait)))},
        )  # fmt: skip
    return found


def scoped(scope: str) -> Any:
    """A dependency that yields the caller, after checking that its key has `scope`."""

    async def check(p: Annotated[Principal, Depends(principal)]) -> Principal:
        p.require(scope)
        return p

    return Depends(check)


class PooledRoute(APIRoute):
    """A route whose plain `def` endpoint runs in the thread pool once per call.

    FastAPI runs a `def` endpoint in its thread pool and then validates the response_model in
    the pool again: two hand-offs per call, each a wait for the GIL under load. Wrapped as a
    coroutine that hands the endpoint to the pool itself, the response is validated on the
    event loop (microseconds) and the call makes one hand-off. Routers pass it as their
    `route_class`; `async def` endpoints are left as they are."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _pooled(endpoint)
        super().__init__(path, endpoint, **kwargs)


def _pooled(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    inline = getattr(endpoint, _INLINE, False)

    @functools.wraps(endpoint)  # FastAPI reads the signature and annotations through it
    async def pooled(*args: Any, **kwargs: Any) -> Any:
        if inline:
            return await run_inline_first(endpoint, *args, **kwargs)
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return pooled


R = TypeVar("R")


async def run_inline_first(work: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """`work` on the event loop where nothing makes it wait, else in the thread pool (see
    `inline_first`)."""
    try:
        with without_waiting():
            return work(*args, **kwargs)
    except WouldWait:
        pass  # nothing was changed: run it where it may wait
    return await run_in_threadpool(work, *args, **kwargs)


_INLINE = "omo_inline_first"
E = TypeVar("E", bound=Callable[..., Any])


def inline_first(endpoint: E) -> E:
    """Mark a `def` endpoint to be tried on the event loop before the thread pool.

    On SQLite a process runs one writer at a time and, holding the GIL, one thread at a time:
    handing a sale to the pool buys no parallelism, only two threads trading the GIL at each
    statement. Tried on the loop first (`db.without_waiting`), the use case runs there when
    nothing would make it wait — the writer's turn free, no other process on the file, no
    retry to pause for — and otherwise raises WouldWait having changed nothing, and goes to
    the pool as before. On PostgreSQL the same holds when the server is on this machine
    (`db.runs_on_loop`): a round trip costs microseconds, and a worker spent some 15 % less
    CPU a sale than handing it to a thread and back; a lock held longer than a few ms sends
    the use case to the pool. Over a network it always goes to the pool. Only for endpoints
    whose work is one short unit of work: while it runs, the loop serves no one else."""
    setattr(endpoint, _INLINE, True)
    return endpoint


UoW = Annotated[UnitOfWork, Depends(get_uow)]
AppSettings = Annotated[Settings, Depends(get_settings)]
# a period of the brand's days, as the clearings and the ledger's roll-forward take it
FirstDay = Annotated[date, Query(alias="from", description="first day (the brand's calendar)")]
DayAfter = Annotated[date, Query(description="the day after the last (at most tomorrow)")]


def part_naming(request: Request, field: str | None) -> str:
    """The part of the request a refusal's field is in: a path or query parameter of that name
    (a member's id in the path, a report's `to`), else the body. No route has a body field named
    as one of its parameters."""
    name = field.split(".", 1)[0] if field else ""
    if name in request.path_params:
        return "path"
    return "query" if name in request.query_params else "body"


def install_error_handlers(app: FastAPI) -> None:
    """Every refusal has one shape: {"detail": [{"loc": [...], "msg": "...", "type": "..."}]},
    and a domain refusal made of values has them in "ctx" (as Pydantic's own errors do)."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        detail = exc.detail(prefix=(part_naming(request, exc.field),))
        return JSONResponse(status_code=exc.status_code, content={"detail": [detail]})

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> Response:
        if not database_unavailable(exc):
            raise exc  # a failing statement: OMO's bug, a 500
        return _unavailable(request, exc)

    @app.exception_handler(NoWriteTurn)
    async def _no_write_turn(request: Request, exc: NoWriteTurn) -> Response:
        return _unavailable(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Pydantic's own list, minus the echoed input (it may carry PII into client logs).
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": errors})


def _unavailable(request: Request, exc: Exception) -> Response:
    """The 503: JSON for the API, a page for the pages (set by the web UI, if installed)."""
    page = getattr(request.app.state, "unavailable_page", None)
    if page is not None and request.url.path.startswith("/ui"):
        report(exc, request.url.path)
        return page(request)  # type: ignore[no-any-return]
    return unavailable(exc, request.url.path)
