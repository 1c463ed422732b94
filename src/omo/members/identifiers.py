"""Normalising member identifiers: pure rules, no database.

Two spellings of the same identifier must normalise to the same value, or deterministic identity
resolution silently fails: `0912-345-678`, `0912345678` and `+886 912 345 678` are one phone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import phonenumbers


class IdentifierKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    LINE_ID = "line_id"
    CARD = "card"
    APP_USER = "app_user"
    MARKETPLACE_BUYER = "marketplace_buyer"
    SOCIAL_LOGIN = "social_login"


# Identifiers that live in someone else's id space need the space named.
NAMESPACES: dict[IdentifierKind, frozenset[str]] = {
    IdentifierKind.MARKETPLACE_BUYER: frozenset({"shopee", "momo", "pchome", "yahoo", "rakuten"}),
    IdentifierKind.SOCIAL_LOGIN: frozenset({"google", "facebook", "apple", "line"}),
}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_CARD = re.compile(r"^[A-Z0-9]{4,32}$")
_LINE_USER = re.compile(r"^U[0-9a-f]{32}$")
_TOKEN = re.compile(r"^[\w.@:+\-]{1,128}$")


class InvalidIdentifier(ValueError):
    """The value cannot be read as an identifier of its kind."""


@dataclass(frozen=True, slots=True)
class Identifier:
    kind: IdentifierKind
    value: str
    namespace: str = ""


def normalise(
    kind: str, value: str, namespace: str | None = None, *, region: str = "TW"
) -> Identifier:
    """The canonical form of an identifier, or InvalidIdentifier saying why not.

    Memoised: a customer's phone comes back with every order, and parsing it is most of the
    cost of reading an order (bulk import). Failures are not cached.
    """
    return _normalise(kind, value, namespace, region)


@lru_cache(maxsize=65_536)
def _normalise(kind: str, value: str, namespace: str | None, region: str) -> Identifier:
    try:
        k = IdentifierKind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in IdentifierKind)
        raise InvalidIdentifier(
            f"unknown identifier kind {kind!r}; expected one of {allowed}"
        ) from None
    text = unicodedata.normalize("NFKC", value or "").strip()
    if not text:
        raise InvalidIdentifier("identifier value is empty")
    ns = (namespace or "").strip().lower()
    allowed_ns = NAMESPACES.get(k)
    if allowed_ns is None:
        if ns:
            raise InvalidIdentifier(f"{k.value} identifiers take no namespace")
    elif ns not in allowed_ns:
        raise InvalidIdentifier(
            f"{k.value} needs a namespace, one of {', '.join(sorted(allowed_ns))}"
        )
    return Identifier(k, _NORMALISERS[k](text, region), ns)


# Taiwanese mobiles (09 + 8 digits, every one valid) are most numbers a TW brand sees; reading
# them here skips libphonenumber's general parse, the largest single cost of bulk imports.
# tests/unit/test_identifiers.py checks this agrees with libphonenumber.
_TW_MOBILE = re.compile(r"^(?:\+886|886)?0?(9\d{8})$")
_SEPARATORS = re.compile(r"[\s\-().]")


def normalise_phone(text: str, region: str = "TW") -> str:
    compact = _SEPARATORS.sub("", text)
    if region == "TW" or compact.startswith("+886"):
        fast = _TW_MOBILE.match(compact)
        if fast:
            return "+886" + fast.group(1)
    return _parse_phone(text, region)


def _parse_phone(text: str, region: str) -> str:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifier(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _email(text: str, _region: str) -> str:
    email = text.lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise InvalidIdentifier("not an e-mail address")
    return email


def _card(text: str, _region: str) -> str:
    card = re.sub(r"[\s\-]", "", text).upper()
    if not _CARD.match(card):
        raise InvalidIdentifier("member card numbers are 4-32 letters or digits")
    return card


def _line(text: str, _region: str) -> str:
    text = text[:1].upper() + text[1:].lower()  # LINE issues lower-case hex ids
    if not _LINE_USER.match(text):
        raise InvalidIdentifier("LINE user ids are 'U' followed by 32 hex digits")
    return text


def _token(text: str, _region: str) -> str:
    if not _TOKEN.match(text):
        raise InvalidIdentifier("ids are 1-128 letters, digits or . _ @ : + -")
    return text


_NORMALISERS: dict[IdentifierKind, Callable[[str, str], str]] = {
    IdentifierKind.PHONE: normalise_phone,
    IdentifierKind.EMAIL: _email,
    IdentifierKind.CARD: _card,
    IdentifierKind.LINE_ID: _line,
    IdentifierKind.APP_USER: _token,
    IdentifierKind.MARKETPLACE_BUYER: _token,
    IdentifierKind.SOCIAL_LOGIN: _token,
}
