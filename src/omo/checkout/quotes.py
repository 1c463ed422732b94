"""A quote a till can commit as it is (CHK-1, CHK-2): the quote's answer carries `quote`, a
signed token of the basket it priced and the total it came to. Committing with it sells that
basket at that total or not at all: the sale prices again under the rules of its moment, and a
different total (a coupon used up meanwhile, a programme changed, points spent elsewhere) is
refused with `price_changed` so that the till can show the customer the new price first.

The token holds the inputs themselves (compressed), not a reference to a stored quote: nothing
is written when a till asks for a price, and any worker can commit it. It expires after
`VALID` — a price shown to a customer at a till is a price for now.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pydantic import ValidationError as PydanticValidationError

from omo.checkout.schemas import QuoteRequest
from omo.shared.errors import ValidationFailed

VALID = timedelta(minutes=30)
PREFIX = "Q1"


def seal(req: QuoteRequest, *, total: Decimal, now: datetime, secret: str) -> str:
    body = {
        "r": req.model_dump(mode="json", exclude_defaults=True),
        "t": str(total),
        "e": int((now + VALID).timestamp()),
    }
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    payload = base64.urlsafe_b64encode(zlib.compress(raw, 6)).rstrip(b"=").decode()
    return f"{PREFIX}.{payload}.{_sign(payload, secret)}"


@dataclass(frozen=True)
class Sealed:
    req: QuoteRequest  # the basket it priced
    total: Decimal
    expires: datetime

    def fresh(self, now: datetime) -> None:
        if now >= self.expires:
            when = self.expires.isoformat()
            raise ValidationFailed(
                f"this quote expired at {when}: quote again", field="quote",
                code="quote_expired", ctx={"expires": when},
            )  # fmt: skip


def unseal(token: str, *, secret: str) -> Sealed:
    """What a quote holds, expired or not (a retry of a sale made in time may come later);
    refused if this server did not make it."""
    parts = token.split(".")
    if (
        len(parts) != 3
        or parts[0] != PREFIX
        or not hmac.compare_digest(parts[2], _sign(parts[1], secret))
    ):
        raise ValidationFailed("not a quote this server made", field="quote", code="bad_quote")
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        body = json.loads(raw)
        req = QuoteRequest.model_validate(body["r"])
        total, expires = Decimal(body["t"]), datetime.fromtimestamp(body["e"], tz=UTC)
    except (ValueError, KeyError, TypeError, zlib.error, PydanticValidationError):
        raise ValidationFailed(
            "not a quote this server made", field="quote", code="bad_quote"
        ) from None
    return Sealed(req, total, expires)


def _sign(payload: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), f"quote:{payload}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()
