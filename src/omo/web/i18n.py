"""Languages of the UI: Babel catalogs (web/locale/LANG.po, read at start; no compile step),
and numbers, money and dates formatted per locale. zh-TW is the default, English and
Simplified Chinese are offered."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime, format_time, get_day_names
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent

LANGUAGES = {"zh-TW": "繁體中文", "en": "English", "zh-CN": "简体中文"}
DEFAULT = "zh-TW"
_BABEL = {"zh-TW": "zh_Hant_TW", "en": "en", "zh-CN": "zh_Hans_CN"}


def pick(cookie: str | None, accept_language: str | None) -> str:
    """The language: the member's choice (cookie), else the browser's first we offer."""
    if cookie in LANGUAGES:
        return str(cookie)
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip()
        if tag in LANGUAGES:
            return tag
        if tag.lower().startswith("zh"):
            return "zh-CN" if tag.lower() in ("zh-cn", "zh-sg", "zh-hans") else "zh-TW"
        if tag.lower().startswith("en"):
            return "en"
    return DEFAULT


@lru_cache(maxsize=8)
def _catalog(lang: str) -> dict[str, str]:
    file = resources.files("omo.web") / "locale" / f"{lang}.po"
    if not file.is_file():
        return {}
    with file.open("rb") as f:
        catalog = read_po(f, locale=_BABEL[lang])
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string and not m.fuzzy}


_CODE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")


def gettext(lang: str, text: str) -> str:
    """The text in `lang`. A code shown through the catalog (a coupon's state, a trigger, a
    segment: `not_yet_valid`) that the language has no entry for reads as words there."""
    found = _catalog(lang).get(text)
    if found is not None:
        return found
    return text.replace("_", " ") if _CODE.fullmatch(text) else text


class Formats:
    """Formatting helpers for templates, bound to one language."""

    def __init__(self, lang: str, currency: str = "TWD") -> None:
        self.locale = Locale.parse(_BABEL[lang])
        self.currency = currency

    def money(self, value: Decimal | str | None) -> str:
        if value is None:
            return "—"
        amount = Decimal(value)
        if self.currency == "TWD":  # NT$ everywhere (zh-TW's own symbol is a bare $)
            cents = amount != amount.to_integral_value()  # NT$120.50, not NT$120.5; NT$500
            return "NT$" + format_decimal(amount, "#,##0.00" if cents else "#,##0",
                                          locale=self.locale)  # fmt: skip
        return format_currency(amount, self.currency, locale=self.locale)

    def weekday(self, iso: int) -> str:
        """A day of the week by its ISO number (1 Monday … 7 Sunday), abbreviated: 週六, Sat."""
        return str(get_day_names("abbreviated", locale=self.locale)[iso - 1])

    def number(self, value: int | float | Decimal | None) -> str:
        return "—" if value is None else format_decimal(value, locale=self.locale)

    def percent(self, value: float | None) -> str:
        return "—" if value is None else format_percent(value, "#,##0.0%", locale=self.locale)

    def when(self, value: datetime | None, zone: str = "Asia/Taipei") -> str:
        if value is None:
            return "—"
        return format_datetime(value, "medium", tzinfo=_zone(zone), locale=self.locale)

    def hour(self, value: datetime | None, zone: str = "Asia/Taipei") -> str:
        """The time of day of a moment, where the store is: 20:15, 下午8:15."""
        if value is None:
            return "—"
        return format_time(value, "short", tzinfo=_zone(zone), locale=self.locale)

    def day(self, value: datetime | None, zone: str = "Asia/Taipei") -> str:
        """The day a moment falls on, where the member is."""
        if value is None:
            return "—"
        return format_date(value.astimezone(_zone(zone)).date(), "medium", locale=self.locale)

    def through(self, value: datetime | None, zone: str = "Asia/Taipei") -> str:
        """The last day before `value` ends something (a coupon valid until midnight is valid
        through the day before it): what a member reads as "valid through"."""
        if value is None:
            return "—"
        last = (value - timedelta(microseconds=1)).astimezone(_zone(zone)).date()
        return format_date(last, "medium", locale=self.locale)


@lru_cache(maxsize=8)
def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
