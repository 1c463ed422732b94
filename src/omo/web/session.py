"""Who is signed in, what they may do, and the CSRF token every form carries. The session is a
signed, HTTP-only cookie (Secure behind TLS) holding the user id and the token, nothing else."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import Request

from omo.users import service as users
from omo.users.roles import Permission, may


class NotSignedIn(Exception):
    """Send the browser to the login page."""


class NotAllowed(Exception):
    """A 403 page: signed in, but this role or store may not see it."""


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def check_csrf(request: Request, presented: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not presented or not hmac.compare_digest(str(expected), presented):
        raise NotAllowed("the form is stale or did not come from this site; reload and try again")


def current_user(request: Request) -> users.SignedIn:
    user_id = request.session.get("user_id")
    if not isinstance(user_id, int):
        raise NotSignedIn
    user = users.get_user(request.app.state.uow, user_id)
    if user is None:  # deactivated since
        request.session.clear()
        raise NotSignedIn
    return user


def require(request: Request, permission: Permission) -> users.SignedIn:
    user = current_user(request)
    if not may(user.role, permission):
        raise NotAllowed(f"the {user.role} role may not open this page")
    return user


def sign_in(request: Request, user: users.SignedIn) -> None:
    request.session.clear()  # a fresh session: no fixation
    request.session["user_id"] = user.id
    csrf_token(request)


def shown(user: users.SignedIn, value: Any) -> Any:
    """Personal data as this user may see it: masked for roles without PII."""
    if value is None or may(user.role, Permission.PII):
        return value
    text = str(value)
    if "@" in text:
        name, _, domain = text.partition("@")
        return f"{name[:1]}***@{domain}"
    return text[:3] + "*" * max(len(text) - 5, 3) + text[-2:] if len(text) > 5 else "***"
