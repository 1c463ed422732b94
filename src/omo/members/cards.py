"""The member card's reference: a signed, dated member id that a member carries as a QR code
and a link, and that a till reads back (pure: the key is passed in)."""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeTimedSerializer

CARD_DAYS = 400  # a link sent once a year keeps working until the next one
PREFIX = "OMO1."  # what a scanned or typed card reference starts with


def _signer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="omo-member-card")


def card_token(secret: str, member_id: int) -> str:
    return PREFIX + _signer(secret).dumps(member_id)


def member_of(secret: str, token: str) -> int | None:
    """The member a card reference names, or None if it is forged, mangled or too old."""
    if not token.startswith(PREFIX):
        return None
    try:
        value = _signer(secret).loads(token[len(PREFIX) :], max_age=CARD_DAYS * 86_400)
    except BadSignature:
        return None
    return value if isinstance(value, int) else None
