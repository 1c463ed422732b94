"""Prometheus metrics: request latency by route, checkouts committed, and the queues an
operator watches (outbox facts not yet read by journeys, messages waiting or dead). Each app has
its own registry, so several apps in one process (tests) do not collide."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from omo.db import UnitOfWork
from omo.messaging import outbox
from omo.messaging import service as messaging

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "omo_request_seconds", "HTTP request latency by route", ["method", "route", "status"],
            buckets=BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.checkouts = Counter(
            "omo_checkouts_total", "checkout commits answered, by outcome", ["outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.outbox = Gauge(
            "omo_outbox_backlog", "facts published and not yet read by the dispatcher", ["topic"],
            registry=self.registry,
        )  # fmt: skip
        self.messages = Gauge(
            "omo_messages", "messages by state (queued, sending, dead …)", ["state"],
            registry=self.registry,
        )  # fmt: skip

    def refresh_queues(self, uow: UnitOfWork) -> None:
        with uow.read() as session:
            pending = outbox.backlog(session)
            states = messaging.counts_by_state(session)
        self.outbox.clear()
        for topic, n in pending.items():
            self.outbox.labels(topic=topic).set(n)
        self.messages.clear()
        for state in ("queued", "sending", "dead"):
            self.messages.labels(state=state).set(states.get(state, 0))


API = "/api/v1"


def _pattern(request: Request) -> str:
    """The matched route's pattern (never a member's id or a token), with the API prefix the
    router it sits in adds."""
    path = getattr(request.scope.get("route"), "path", None)
    if path is None:
        return "unmatched"
    if request.url.path.startswith(API + "/") and not path.startswith(API):
        return f"{API}{path}"
    return str(path)


def install(app: FastAPI, uow: UnitOfWork) -> Metrics:
    metrics = Metrics()

    @app.middleware("http")
    async def _timed(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        path = _pattern(request)
        metrics.latency.labels(request.method, path, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        if path == "/api/v1/checkout/commit" and request.method == "POST":
            outcome = "ok" if response.status_code < 400 else str(response.status_code)
            metrics.checkouts.labels(outcome=outcome).inc()
        return response

    @app.get("/metrics", include_in_schema=False)
    def _metrics() -> Response:
        metrics.refresh_queues(uow)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
