"""Wrong passwords, counted per user name: after `LIMIT` in `WINDOW`, that name is refused until
the oldest of them is `WINDOW` old, whatever the password. It stands between a guesser and the
sign-in page, and a till's approval field where store staff could try a manager's password.

Counted in the database (`sign_in_failures`), so every worker and every restart sees the same
count. Names that do not exist are counted alike, so the refusal tells nothing about who
exists. Rows older than the window are removed as new ones come.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from omo.shared import clock
from omo.users.models import SignInFailure

LIMIT = 5
WINDOW = timedelta(minutes=15)
NAME = 64  # the longest user name; a longer one typed is counted by its first 64 characters


def wait(session: Session, username: str, now: datetime) -> timedelta | None:
    """How long this name is refused for, or None."""
    recent = session.scalars(
        select(SignInFailure.at)
        .where(SignInFailure.username == username[:NAME], SignInFailure.at > now - WINDOW)
        .order_by(SignInFailure.at.desc())
        .limit(LIMIT)
    ).all()
    if len(recent) < LIMIT:
        return None
    return clock.as_utc(recent[-1]) + WINDOW - now


def failed(session: Session, username: str, now: datetime) -> None:
    session.execute(delete(SignInFailure).where(SignInFailure.at <= now - WINDOW))
    session.add(SignInFailure(username=username[:NAME], at=now))
    session.flush()


def passed(session: Session, username: str) -> None:
    session.execute(delete(SignInFailure).where(SignInFailure.username == username[:NAME]))
