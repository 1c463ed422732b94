"""The signature a receiver checks on each webhook post (webhooks/signing.py)."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from omo.webhooks.signing import sign, verify

SECRET = "whsec_test"
T = 1_796_000_000


def test_the_signature_is_hmac_sha256_of_the_time_and_the_body() -> None:
    body = b'{"id":1}'
    expected = hmac.new(SECRET.encode(), b"1796000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, T, body) == f"t={T},v1={expected}"


@given(st.binary(max_size=200), st.integers(min_value=-300, max_value=300))
def test_a_post_verifies_as_signed_within_the_tolerance(body: bytes, late: int) -> None:
    assert verify(SECRET, sign(SECRET, T, body), body, now=T + late)


def test_a_changed_body_an_old_post_another_secret_or_a_mangled_header_fail() -> None:
    body = b'{"id":1,"payload":{"total":"100"}}'
    header = sign(SECRET, T, body)
    assert not verify(SECRET, header, body.replace(b"100", b"900"), now=T)
    assert not verify(SECRET, header, body, now=T + 301)
    assert not verify("whsec_other", header, body, now=T)
    for mangled in ("", "t=abc,v1=00", f"t={T}", f"v1={header.partition(',v1=')[2]}"):
        assert not verify(SECRET, mangled, body, now=T)
