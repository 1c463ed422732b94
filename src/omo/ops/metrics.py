"""Prometheus metrics: request latency by route, checkouts committed, and the queues an
operator watches (outbox facts not yet read by journeys, messages waiting or dead). Each app has
its own registry, so several apps in one process (tests) do not collide."""

from __future__ import annotations

import time

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omo.db import UnitOfWork
from omo.messaging import outbox
from omo.messaging import service as messaging
from omo.webhooks import service as webhooks

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
        self.webhook_waiting = Gauge(
            "omo_webhook_waiting", "facts of a subscription's topics not yet posted", ["webhook"],
            registry=self.registry,
        )  # fmt: skip
        self.webhook_failures = Gauge(
            "omo_webhook_failures", "a subscription's failed posts in a row", ["webhook"],
            registry=self.registry,
        )  # fmt: skip
        self.webhook_skipped = Gauge(
            "omo_webhook_skipped", "facts a subscription never got: removed past the outbox's "
            "retention while it was off or failing", ["webhook"], registry=self.registry,
        )  # fmt: skip
        self.webhook_switched_off = Gauge(
            "omo_webhook_switched_off", "1 when the scheduler switched a subscription off for "
            "failing too long (its facts wait until it is switched back on)", ["webhook"],
            registry=self.registry,
        )  # fmt: skip

    def refresh_queues(self, uow: UnitOfWork) -> None:
        with uow.read() as session:
            pending = outbox.backlog(session)
            states = messaging.counts_by_state(session)
            hooks = webhooks.standing(session)
        self.outbox.clear()
        for topic, n in pending.items():
            self.outbox.labels(topic=topic).set(n)
        self.messages.clear()
        for state in ("queued", "sending", "dead"):
            self.messages.labels(state=state).set(states.get(state, 0))
        self.webhook_waiting.clear()
        self.webhook_failures.clear()
        self.webhook_skipped.clear()
        self.webhook_switched_off.clear()
        for name, waiting, failures, skipped, off in hooks:
            self.webhook_waiting.labels(webhook=name).set(waiting)
            self.webhook_failures.labels(webhook=name).set(failures)
            self.webhook_skipped.labels(webhook=name).set(skipped)
            self.webhook_switched_off.labels(webhook=name).set(off)


API = "/api/v1"


def _pattern(scope: Scope) -> str:
    """The matched route's pattern (never a member's id or a token), with the API prefix the
    router it sits in adds."""
    path = getattr(scope.get("route"), "path", None)
    if path is None:
        return "unmatched"
    if str(scope.get("path", "")).startswith(API + "/") and not path.startswith(API):
        return f"{API}{path}"
    return str(path)


class _Timed:
    """Times every HTTP request by route pattern; a plain ASGI middleware (Starlette's
    call_next middleware costs about a millisecond a request in its memory streams)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path, method = _pattern(scope), scope["method"]
            self.metrics.latency.labels(method, path, str(status)).observe(
                time.perf_counter() - started
            )
            if path == "/api/v1/checkout/commit" and method == "POST":
                outcome = "ok" if status < 400 else str(status)
                self.metrics.checkouts.labels(outcome=outcome).inc()


def install(app: FastAPI, uow: UnitOfWork) -> Metrics:
    metrics = Metrics()
    app.add_middleware(_Timed, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    def _metrics() -> Response:
        metrics.refresh_queues(uow)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
