"""Use cases of users: create one, check a password, list them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from omo.audit import service as audit
from omo.commerce import service as commerce
from omo.db import UnitOfWork
from omo.shared import clock
from omo.shared.errors import Conflict, DomainError, ValidationFailed
from omo.users import throttle
from omo.users.models import User
from omo.users.roles import STORE_ROLES, Role

_hasher = PasswordHasher()  # argon2id with the library's current recommended costs
# a hash to check against when the user does not exist, so both answers take as long
_DUMMY = _hasher.hash("not a password of anyone")
MIN_PASSWORD = 10
_USERNAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


@dataclass(frozen=True)
class SignedIn:
    id: int
    username: str
    role: str
    store_id: int | None


def create_user(
    uow: UnitOfWork,
    *,
    username: str,
    password: str,
    role: str,
    store_code: str | None,
    actor: str = "cli",
) -> SignedIn:
    """A new user; staff must be bound to a store, the other roles must not be."""
    if (
        not username
        or len(username) > 64
        or not username.replace("-", "").replace("_", "").replace(".", "").isalnum()
    ):
        raise ValidationFailed("letters, digits, - _ . only (1-64)", field="username")
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"at least {MIN_PASSWORD} characters", field="password")
    if role not in set(Role):
        raise ValidationFailed(f"one of {', '.join(Role)}", field="role")
    if (role in STORE_ROLES) != (store_code is not None):
        raise ValidationFailed("store staff need a store; other roles have none", field="store")

    hashed = _hasher.hash(password)  # before the transaction: it takes tens of milliseconds

    def run(session: Session) -> SignedIn:
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise Conflict(f"user {username!r} exists", field="username")
        store_id = commerce.store_by_code(session, store_code).id if store_code else None
        user = User(
            username=username, password_hash=hashed, role=role,
            store_id=store_id, active=True, created_at=clock.now(),
        )  # fmt: skip
        session.add(user)
        session.flush()
        audit.record(
            session, actor=actor, action="user.create", target=f"user:{username}",
            detail={"role": role, "store": store_code},
        )  # fmt: skip
        return SignedIn(user.id, user.username, user.role, user.store_id)

    return uow.run(run)


def authenticate(uow: UnitOfWork, *, username: str, password: str) -> SignedIn | None:
    """The user if the password is theirs (and they are active), else None."""
    return _confirmed(uow, username, password, sign_in=True)


def check_password(uow: UnitOfWork, *, username: str, password: str) -> SignedIn | None:
    """As `authenticate`, for a user confirming something at another's screen (a manager
    approving a refund at a till): not a sign-in, so only the password count is written."""
    return _confirmed(uow, username, password, sign_in=False)


def _confirmed(uow: UnitOfWork, username: str, password: str, *, sign_in: bool) -> SignedIn | None:
    user_id = _checked(uow, username, password)
    if user_id is None:
        return None

    def run(session: Session) -> SignedIn | None:
        throttle.passed(session, username)
        user = session.get(User, user_id)
        if user is None or not user.active:  # removed or switched off meanwhile
            return None
        if sign_in:
            if _hasher.check_needs_rehash(user.password_hash):
                user.password_hash = _hasher.hash(password)
            user.last_login_at = clock.now()
        return SignedIn(user.id, user.username, user.role, user.store_id)

    return uow.run(run)


class TooManyAttempts(DomainError):
    status_code = 429
    code = "too_many_attempts"


def _checked(uow: UnitOfWork, username: str, password: str) -> int | None:
    """The id of the active user whose password this is, else None (and the wrong password
    counted); refused outright while the name has had too many wrong ones (users/throttle.py).
    The hash is checked outside any transaction: it takes tens of milliseconds, for which a
    write transaction would hold SQLite's writer lock, and every till's sale with it."""
    now = clock.now()
    with uow.read() as session:
        wait = throttle.wait(session, username, now)
        user = session.scalar(select(User).where(User.username == username))
        held = (user.id, user.password_hash) if user is not None and user.active else None
    if wait is not None:
        minutes = max(1, -(-int(wait.total_seconds()) // 60))
        raise TooManyAttempts(
            f"too many wrong passwords for this user name: try again in {minutes} min",
            field="password",
        )
    if held is None:
        _verify(_DUMMY, password)  # as long as for a user who exists
    elif _verify(held[1], password):
        return held[0]
    uow.run(lambda session: throttle.failed(session, username, now))
    return None


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def get_user(uow: UnitOfWork, user_id: int) -> SignedIn | None:
    with uow.read() as session:
        user = session.get(User, user_id)
        if user is None or not user.active:
            return None
        return SignedIn(user.id, user.username, user.role, user.store_id)
