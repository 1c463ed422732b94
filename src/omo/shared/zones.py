"""Members' time zones from their country (pure): birthdays and quiet hours are local."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

# countries our brands' members live in, beyond the brand's own zone
_BY_COUNTRY = {
    "TW": "Asia/Taipei", "HK": "Asia/Hong_Kong", "MO": "Asia/Macau", "CN": "Asia/Shanghai",
    "SG": "Asia/Singapore", "MY": "Asia/Kuala_Lumpur", "JP": "Asia/Tokyo", "KR": "Asia/Seoul",
    "TH": "Asia/Bangkok", "VN": "Asia/Ho_Chi_Minh", "PH": "Asia/Manila", "ID": "Asia/Jakarta",
    "US": "America/Los_Angeles", "CA": "America/Toronto", "GB": "Europe/London",
    "AU": "Australia/Sydney", "NZ": "Pacific/Auckland",
}  # fmt: skip


@lru_cache(maxsize=64)
def zone_of(country: str | None, default: str) -> ZoneInfo:
    """The member's zone: their country's main zone, else the brand's."""
    return ZoneInfo(_BY_COUNTRY.get((country or "").upper(), default))


def checked_zone(name: str) -> str:
    """`name` if it is an IANA time zone this machine knows, else ValueError naming it."""
    try:
        ZoneInfo(name)
    except (KeyError, ValueError):
        raise ValueError(f"timezone: unknown zone {name!r}") from None
    return name


def countries_in(zone: str) -> list[str]:
    return [c for c, z in _BY_COUNTRY.items() if z == zone]


def known_countries() -> list[str]:
    return sorted(_BY_COUNTRY)


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of `day` in `zone`, in UTC (local days of a clock change are 23 or 25
    hours long)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
