"""When and how often a member may be messaged (pure): quiet hours in the member's own time,
back-off between delivery attempts."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from omo.shared.clock import as_utc


def after_quiet_hours(at: datetime, *, zone: ZoneInfo, start: int, end: int) -> datetime:
    """`at` if it falls outside quiet hours [start, end) local time, else the moment they end.
    start > end wraps midnight (21 → 9); start == end means no quiet hours."""
    if start == end:
        return at
    local = as_utc(at).astimezone(zone)
    hour = local.hour
    quiet = (start <= hour < end) if start < end else (hour >= start or hour < end)
    if not quiet:
        return at
    day = local.date()
    if start > end and hour >= start:
        day += timedelta(days=1)
    resume = datetime.combine(day, time(end), tzinfo=zone)
    return as_utc(resume)


def backoff(attempts: int) -> timedelta:
    """Wait before the next attempt after `attempts` failures: 1, 2, 4 … minutes, at most 6 h."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 360))
