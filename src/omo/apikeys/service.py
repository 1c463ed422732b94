"""API keys: created by `omo apikey create`, stored hashed, checked on every /api/v1 call.

A key is `omo_<prefix>_<secret>`: the prefix finds the row, the secret is compared by hash.
The secret carries 256 bits of randomness, so a fast hash (SHA-256) is enough; a slow password
hash would only cost latency on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from omo.apikeys.models import ApiKey
from omo.audit import service as audit
from omo.commerce.service import store_by_code
from omo.db import UnitOfWork
from omo.shared import clock
from omo.shared.errors import Conflict, Forbidden, NotFound, ValidationFailed

SCOPES = frozenset(
    {
        "members:read",
        "members:write",
        "orders:write",
        "events:write",
        "identity:merge",
        "catalog:write",
        "kpis:read",
        "points:write",
        "loyalty:admin",
        "marketing:admin",
        "privacy:admin",
        "refunds:approve",  # past the returns policy (a manager's till, the back office)
        "days:reopen",  # a store's closed day reopened (a manager, the back office)
        "webhooks:admin",  # subscriptions that post the outbox's facts out
        "facts:read",  # the outbox's facts read page by page (GET /facts)
    }
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name, its store binding and scopes."""

    name: str
    store_id: int | None = None
    scopes: frozenset[str] = field(default_factory=lambda: SCOPES)

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this API key lacks the scope {scope}", code="missing_scope")

    def check_store(self, store_id: int | None, *, field: str, required: bool = True) -> None:
        """A key bound to a store writes that store's records only."""
        if self.store_id is None:
            return
        if store_id is None and not required:
            return
        if store_id != self.store_id:
            raise Forbidden(
                "this API key is bound to another store and cannot write for this one",
                field=field,
                code="wrong_store",
            )


@dataclass(frozen=True)
class CreatedKey:
    key: str
    name: str
    store_id: int | None
    scopes: tuple[str, ...]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    uow: UnitOfWork,
    *,
    name: str,
    store_code: str | None,
    scopes: list[str] | None,
    actor: str = "cli",
) -> CreatedKey:
    """Create a key; the plain key is returned once and never stored."""
    wanted = sorted(set(scopes or SCOPES))
    unknown = set(wanted) - SCOPES
    if unknown:
        raise ValidationFailed(
            f"unknown scope(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(SCOPES))}",
            field="scope",
        )
    if not name or len(name) > 64:
        raise ValidationFailed("a key needs a name of 1-64 characters", field="name")
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)

    def run(session: Session) -> CreatedKey:
        if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
            raise Conflict(f"an API key named {name!r} exists", field="name")
        store_id = store_by_code(session, store_code).id if store_code else None
        session.add(
            ApiKey(
                name=name,
                prefix=prefix,
                secret_hash=_hash(secret),
                store_id=store_id,
                scopes=" ".join(wanted),
                created_at=clock.now(),
            )
        )
        audit.record(
            session, actor=actor, action="apikey.create", target=f"apikey:{name}",
            detail={"store": store_code, "scopes": wanted},
        )  # fmt: skip
        return CreatedKey(f"omo_{prefix}_{secret}", name, store_id, tuple(wanted))

    return uow.run(run, attempts=1)


def revoke_key(uow: UnitOfWork, *, name: str, actor: str = "cli") -> None:
    def run(session: Session) -> None:
        key = session.scalar(select(ApiKey).where(ApiKey.name == name))
        if key is None:
            raise NotFound(f"no API key named {name!r}", field="name")
        key.revoked_at = clock.now()
        audit.record(session, actor=actor, action="apikey.revoke", target=f"apikey:{name}")

    uow.run(run, attempts=1)
    _cache.clear()


class _TTLCache:
    """Keys verified in the last few seconds, so a busy till costs no extra query per call."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._items: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Principal | None:
        with self._lock:
            hit = self._items.get(key)
            if hit and time.monotonic() - hit[0] < self.ttl_s:
                return hit[1]
            return None

    def put(self, key: str, principal: Principal) -> None:
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key] = (time.monotonic(), principal)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_cache = _TTLCache(ttl_s=5.0)


def cached_principal(presented: str) -> Principal | None:
    """The principal of a key authenticated in the last few seconds (no database read)."""
    return _cache.get(_hash(presented))


def authenticate(uow: UnitOfWork, presented: str) -> Principal | None:
    """The principal of a presented key, or None if it is unknown, malformed or revoked."""
    digest = _hash(presented)
    cached = _cache.get(digest)
    if cached is not None:
        return cached
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != "omo":
        return None
    with uow.read() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_hash, _hash(parts[2])):
            return None
        principal = Principal(row.name, row.store_id, frozenset(row.scopes.split()))
    _cache.put(digest, principal)
    return principal
