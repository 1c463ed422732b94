"""Wrong passwords, counted per user name: after `LIMIT` in `WINDOW`, that name is refused until
the oldest of them is `WINDOW` old, whatever the password. It stands between a guesser and the
sign-in page, and a till's approval field where store staff could try a manager's password.

Held in the process (a restart forgets; each worker counts its own), keyed by the database and
the name typed — names that do not exist are counted alike, so the refusal tells nothing about
who exists.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

LIMIT = 5
WINDOW = timedelta(minutes=15)
KEPT = 10_000  # names tracked before the stale ones are dropped


class WrongPasswords:
    def __init__(self, limit: int = LIMIT, window: timedelta = WINDOW) -> None:
        self.limit, self.window = limit, window
        self._seen: dict[tuple[str, str], deque[datetime]] = {}
        self._lock = threading.Lock()

    def wait(self, key: tuple[str, str], now: datetime) -> timedelta | None:
        """How long this name is refused for, or None."""
        with self._lock:
            times = self._recent(key, now)
            if len(times) < self.limit:
                return None
            return times[0] + self.window - now

    def failed(self, key: tuple[str, str], now: datetime) -> None:
        with self._lock:
            if len(self._seen) >= KEPT:
                for k in [k for k in self._seen if not self._recent(k, now)]:
                    del self._seen[k]
            times = self._seen.setdefault(key, deque())
            times.append(now)
            while len(times) > self.limit:
                times.popleft()

    def passed(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._seen.pop(key, None)

    def _recent(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        times = self._seen.get(key, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        return times


WRONG = WrongPasswords()
