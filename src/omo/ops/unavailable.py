"""A database that cannot be reached, or is too busy to answer in time, is a 503 the client
can act on — retry shortly with the same body — rather than a 500, which says OMO failed.

Unavailable: the connection failed or was lost (PostgreSQL down or restarting, its
connections used up), SQLite's lock still held when its busy timeout ran out, PostgreSQL's
serialization or deadlock failures still losing after `UnitOfWork.run`'s retries, this
process's own SQLite writers holding the database past their wait (`NoWriteTurn`). A sale is
recorded once whatever the outcome of the call that failed: the retry is answered with what
was recorded (docs/till.md)."""

from __future__ import annotations

import logging
import sqlite3

from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.responses import JSONResponse

log = logging.getLogger("omo.unavailable")

# class 08: connection exceptions; 53300 too many connections, 53000 insufficient resources;
# 57P01-57P03 the server shutting down or starting; 40001/40P01 serialization and deadlock
# (after the retries); 55P03 a lock not had in time
_PG_BUSY = {"53000", "53300", "57P01", "57P02", "57P03", "40001", "40P01", "55P03"}
_SQLITE_BUSY = ("database is locked", "unable to open database file", "disk I/O error")
RETRY_AFTER_S = 1
DETAIL = {
    "loc": [],
    "msg": "the database could not be reached or was busy; retry shortly with the same body",
    "type": "database_unavailable",
}


def database_unavailable(exc: DBAPIError) -> bool:
    """Whether `exc` says the database is out of reach or busy, not that a statement is wrong."""
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    state = getattr(orig, "sqlstate", None)
    if state:
        return state.startswith("08") or state in _PG_BUSY
    if isinstance(orig, sqlite3.OperationalError):
        return any(said in str(orig) for said in _SQLITE_BUSY)
    # psycopg's OperationalError without a SQLSTATE is the client's own connection failing
    # (refused, closed, lost); the server's refusals all carry one
    return isinstance(exc, OperationalError) and type(orig).__module__.startswith("psycopg")


def report(exc: Exception, path: str) -> None:
    """Tell the operator (NoWriteTurn, or what `database_unavailable` said yes to)."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    said = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    log.warning("database unavailable on %s: %s", path, said)


def unavailable(exc: Exception, path: str) -> JSONResponse:
    """The API's 503 for `exc`, reported."""
    report(exc, path)
    return JSONResponse(
        status_code=503,
        content={"detail": [DETAIL]},
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
