"""What the live period reports share: the period [from, to) they answer for, and shares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from omo.shared import clock
from omo.shared.errors import ValidationFailed

DEFAULT_PERIOD = timedelta(days=30)
# reports look back up to a year before `from` (dormancy, attribution windows): keep clear of
# datetime's own limits, so a far-off date is a clear 422, not an overflow
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def period(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """[since, until) in UTC; default: the 30 days to now. Refused when backwards or out of
    range."""
    for name, value in (("from", since), ("to", until)):
        if value is not None and not EARLIEST <= clock.as_utc(value) <= LATEST:
            raise ValidationFailed(
                f"{name} must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}",
                field=f"query.{name}",
            )
    until = clock.as_utc(until) if until else clock.now()
    since = clock.as_utc(since) if since else until - DEFAULT_PERIOD
    if since >= until:
        raise ValidationFailed("from must be before to", field="query.from")
    return since, until


def share(part: float, whole: float) -> float:
    """part / whole to four places; 0 when there is no whole."""
    return round(float(part) / float(whole), 4) if whole else 0.0
