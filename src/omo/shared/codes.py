"""Codes people read and type: coupon codes, referral codes."""

from __future__ import annotations

import secrets

# Crockford's base 32: no I, L, O or U to misread at a till.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def random_code(length: int) -> str:
    """`length` characters from ALPHABET, from the OS's secure random source (5 bits each)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))
