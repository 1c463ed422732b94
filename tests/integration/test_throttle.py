"""Wrong passwords per user name (users/throttle.py), counted in the database: the sixth try
within the window is refused until the oldest wrong one is a window old; a right password clears
the count; every worker, and a restarted one, sees the same count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from omo.db import UnitOfWork
from omo.shared import clock
from omo.users import service as users
from omo.users.models import SignInFailure

T = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
PASSWORD = "a-long-password"


@pytest.fixture
def boss(uow: UnitOfWork) -> str:
    users.create_user(uow, username="boss", password=PASSWORD, role="admin", store_code=None)
    return "boss"


def at(moment: datetime) -> None:
    clock.set_clock(lambda: moment)


def test_five_wrong_then_refused_until_the_oldest_is_a_window_old(
    uow: UnitOfWork, boss: str
) -> None:
    for n in range(5):
        at(T + timedelta(minutes=n))
        assert users.authenticate(uow, username=boss, password="wrong") is None
    at(T + timedelta(minutes=5))
    with pytest.raises(users.TooManyAttempts) as refused:
        users.authenticate(uow, username=boss, password=PASSWORD)
    assert "10 min" in refused.value.message
    with pytest.raises(users.TooManyAttempts):  # a manager's approval at a till alike
        users.check_password(uow, username=boss, password=PASSWORD)
    at(T + timedelta(minutes=14, seconds=59))
    with pytest.raises(users.TooManyAttempts):
        users.authenticate(uow, username=boss, password=PASSWORD)
    at(T + timedelta(minutes=15))  # the first has aged out
    assert users.authenticate(uow, username=boss, password=PASSWORD) is not None


def test_names_that_do_not_exist_are_counted_alike(uow: UnitOfWork, boss: str) -> None:
    at(T)
    for _ in range(5):
        assert users.authenticate(uow, username="nobody", password="wrong") is None
    with pytest.raises(users.TooManyAttempts):
        users.authenticate(uow, username="nobody", password="wrong")
    assert users.authenticate(uow, username=boss, password=PASSWORD) is not None  # another name
    long = "x" * 80  # longer than any user name: counted by its first 64 characters
    for _ in range(5):
        assert users.check_password(uow, username=long, password="wrong") is None
    with pytest.raises(users.TooManyAttempts):
        users.check_password(uow, username="x" * 64, password="wrong")


def test_a_right_password_clears_the_count(uow: UnitOfWork, boss: str) -> None:
    at(T)
    for _ in range(4):
        users.authenticate(uow, username=boss, password="wrong")
    assert users.authenticate(uow, username=boss, password=PASSWORD) is not None
    for _ in range(4):
        users.authenticate(uow, username=boss, password="wrong")
    assert users.authenticate(uow, username=boss, password=PASSWORD) is not None


def test_every_worker_sees_one_count_and_old_rows_go(uow: UnitOfWork, boss: str) -> None:
    at(T)
    other = UnitOfWork(uow.engine.engine)  # a second worker, or this one restarted
    for n in range(5):
        users.authenticate(uow if n % 2 else other, username=boss, password="wrong")
    with pytest.raises(users.TooManyAttempts):
        users.authenticate(UnitOfWork(uow.engine.engine), username=boss, password=PASSWORD)

    def rows() -> int:
        with uow.read() as s:
            return int(s.scalar(select(func.count()).select_from(SignInFailure)) or 0)

    assert rows() == 5
    at(T + timedelta(hours=1))
    users.authenticate(uow, username="someone-else", password="wrong")
    assert rows() == 1  # the hour-old ones went with the new one


def test_a_right_approval_clears_the_count_too(uow: UnitOfWork, boss: str) -> None:
    at(T)
    for _ in range(4):
        assert users.check_password(uow, username=boss, password="wrong") is None
    assert users.check_password(uow, username=boss, password=PASSWORD) is not None
    for _ in range(4):
        users.check_password(uow, username=boss, password="wrong")
    assert users.authenticate(uow, username=boss, password=PASSWORD) is not None


def test_the_password_is_checked_outside_any_write(
    uow: UnitOfWork, boss: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hash takes tens of milliseconds; a write transaction around it would hold SQLite's
    writer lock, and every till's sale with it. A sale written while the hash is checked goes
    through at once."""
    real = users._verify
    written: list[bool] = []

    def verify_while_a_till_writes(hashed: str, password: str) -> bool:
        other = UnitOfWork(uow.engine.engine)
        with other.write() as session:  # would wait on a writer lock held around the check
            session.add(SignInFailure(username="till-write", at=T))
        written.append(True)
        return real(hashed, password)

    monkeypatch.setattr(users, "_verify", verify_while_a_till_writes)
    at(T)
    assert users.authenticate(uow, username=boss, password=PASSWORD) is not None
    assert users.check_password(uow, username=boss, password="wrong") is None
    assert written == [True, True]
