"""Wrong passwords per user name (users/throttle.py): the sixth try within the window is refused
until the oldest wrong one is a window old; a right password clears the count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from omo.users import throttle
from omo.users.throttle import WrongPasswords

T = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
BOSS = ("db", "boss")


def test_five_wrong_then_refused_until_the_oldest_is_a_window_old() -> None:
    w = WrongPasswords(limit=5, window=timedelta(minutes=15))
    for n in range(5):
        assert w.wait(BOSS, T + timedelta(minutes=n)) is None
        w.failed(BOSS, T + timedelta(minutes=n))
    assert w.wait(BOSS, T + timedelta(minutes=5)) == timedelta(minutes=10)
    assert w.wait(("db", "other"), T) is None  # another name, another count
    assert w.wait(("other-db", "boss"), T) is None  # another database
    assert w.wait(BOSS, T + timedelta(minutes=14, seconds=59)) is not None
    assert w.wait(BOSS, T + timedelta(minutes=15)) is None  # the first has aged out


def test_a_right_password_clears_the_count() -> None:
    w = WrongPasswords(limit=3, window=timedelta(minutes=15))
    for _ in range(2):
        w.failed(BOSS, T)
    w.passed(BOSS)
    for _ in range(2):
        w.failed(BOSS, T)
    assert w.wait(BOSS, T) is None


def test_stale_names_are_dropped_when_many_are_held(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle, "KEPT", 3)
    w = WrongPasswords(limit=5, window=timedelta(minutes=15))
    for n in range(3):
        w.failed(("db", f"u{n}"), T)
    w.failed(("db", "late"), T + timedelta(minutes=20))  # the three are stale by now
    assert set(w._seen) == {("db", "late")}
