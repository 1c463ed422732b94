"""The signature on each webhook post (pure): `OMO-Signature: t=<unix seconds>,v1=<hex>`, where
the hex is HMAC-SHA256 of `<t>.<body>` under the subscription's secret. A receiver recomputes it
over the raw body and refuses a post whose `t` is too old (a replay)."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "OMO-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance_s: int = 300) -> bool:
    """What a receiver does: the header's signature matches the body, and it is recent."""
    parts = dict(p.partition("=")[::2] for p in header.split(","))
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).partition(",v1=")[2]
    return hmac.compare_digest(expected, parts.get("v1", ""))
