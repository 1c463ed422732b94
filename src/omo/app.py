"""The ASGI application: create_app(settings) wires routers, auth and error answers."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from starlette.middleware.sessions import SessionMiddleware

from omo import __version__
from omo.analytics.api import router as analytics_router
from omo.checkout.api import router as checkout_router
from omo.checkout.lane import TillLane, till_routes
from omo.commerce.api import router as commerce_router
from omo.coupons.api import router as coupons_router
from omo.db import UnitOfWork, make_engine, runs_on_loop
from omo.events.api import router as events_router
from omo.http import install_error_handlers
from omo.identity.api import router as identity_router
from omo.journeys.api import router as journeys_router
from omo.journeys.scheduler import Scheduler
from omo.members.api import router as members_router
from omo.messaging.adapters import adapters_from
from omo.messaging.api import public as message_links
from omo.messaging.api import router as messaging_router
from omo.ops import metrics
from omo.ops.limits import BodyLimit, RateLimiter
from omo.ops.nul import NoNul
from omo.ops.schema import database_schema, migration_head, schema_advice
from omo.points.api import router as points_router
from omo.privacy.api import router as privacy_router
from omo.referrals.api import router as referrals_router
from omo.rewards.api import router as rewards_router
from omo.settings import Settings, get_settings
from omo.shared.secrets import secret_key
from omo.tiers.api import router as tiers_router
from omo.web import views as web
from omo.web.api import router as card_router
from omo.webhooks.api import router as webhooks_router

log = logging.getLogger("omo.app")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = make_engine(settings)
    uow = UnitOfWork(engine, pg_on_loop=runs_on_loop(settings))
    adapters = adapters_from(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # on a thread: a database host that does not answer must not hold the start (/livez)
        threading.Thread(target=_say_a_stale_schema, args=(engine,), daemon=True).start()
        if settings.gc_freeze:
            gc.collect()
            gc.freeze()
        scheduler = None
        if settings.jobs_every_s > 0:
            scheduler = Scheduler(uow, settings=settings, adapters=adapters)
            scheduler.start(every_s=settings.jobs_every_s)
        yield
        if scheduler is not None:
            scheduler.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="OMO",
        version=__version__,
        description=(
            "Omnichannel membership and loyalty. Every /api/v1 call needs an API key "
            "(`omo apikey create`), sent as `Authorization: Bearer omo_…` or `X-API-Key`."
        ),
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.uow = uow
    app.state.adapters = adapters
    install_error_handlers(app)

    # The probes first: routes are matched in order, one pattern after another, and /livez
    # registered last came after some 110 others (0.23 ms a call, ten times its own work).
    @app.get("/readyz", tags=["ops"], summary="Ready to serve: database reachable and migrated")
    def readyz() -> Any:
        try:
            current = database_schema(engine)
        except Exception as exc:
            return JSONResponse(
                status_code=503, content={"status": "unavailable", "database": type(exc).__name__}
            )
        head = migration_head()
        if current != head:
            return JSONResponse(
                status_code=503,
                content={"status": "migrate", "database": current, "code": head},
            )
        return {"status": "ready", "schema": current}

    @app.get("/livez", tags=["ops"], summary="Liveness: the process answers (no database)")
    async def livez() -> dict[str, str]:
        # Kubernetes' liveness probe: a database outage must not get every replica restarted.
        return {"status": "alive", "version": __version__}

    @app.get("/healthz", tags=["ops"], summary="Liveness and database reachability")
    def healthz() -> Any:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse(
                status_code=503, content={"status": "unavailable", "database": type(exc).__name__}
            )
        return {"status": "ok", "database": engine.dialect.name, "version": __version__}

    api = APIRouter(prefix="/api/v1")
    # The till's calls first: routes are matched in order, one pattern after another, and the
    # checkout's commit came after some eighty others (0.3 ms a call).
    routers = (
        checkout_router, members_router, identity_router, commerce_router, events_router,
        points_router, tiers_router, coupons_router, referrals_router, rewards_router,
        analytics_router, journeys_router, messaging_router, card_router, privacy_router,
        webhooks_router,
    )  # fmt: skip
    for router in routers:
        api.include_router(router)
    app.include_router(api)
    app.include_router(message_links)
    app.add_middleware(
        SessionMiddleware, secret_key=secret_key(settings), session_cookie="omo_session",
        max_age=8 * 3600, same_site="lax", https_only=settings.cookie_secure,
    )  # fmt: skip
    app.state.rate_limiter = RateLimiter(
        rate=settings.rate_limit_per_s, burst=settings.rate_limit_burst
    )
    # outside the session's middleware, inside the metrics' (which time and count the sale)
    app.add_middleware(TillLane, routes=till_routes(uow, settings), limiter=app.state.rate_limiter)
    web.install(app)
    metrics.install(app, uow)
    app.add_middleware(NoNul)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    return app


def _say_a_stale_schema(engine: Engine) -> None:
    """At start, a database not at this code's schema is said in the log: otherwise the first
    sign is every request failing (`/readyz` says `migrate`). It still starts: a rolling
    upgrade may start the new code before the migration has run."""
    try:
        advice = schema_advice(database_schema(engine))
    except DBAPIError as exc:  # /healthz and the requests' 503s say it from here on
        log.warning("the database cannot be opened: %s", str(exc.orig).strip()[:200])
        return
    if advice is not None:
        log.warning("the database %s", advice)
