"""A receiver's URL as shown (webhooks/masking.py, pure): credentials masked, the rest as is."""

from __future__ import annotations

import pytest

from omo.webhooks.masking import masked


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://erp.example/hook", "https://erp.example/hook"),
        ("https://erp.example/hook?v=2#x", "https://erp.example/hook?v=2#x"),
        ("http://u:secret@10.0.0.5:9000/omo", "http://u:***@10.0.0.5:9000/omo"),
        ("http://:secret@h.example/", "http://:***@h.example/"),
        ("http://user@h.example/", "http://user@h.example/"),  # no password
        ("http://u:p@[::1]:8080/x", "http://u:***@[::1]:8080/x"),
        ("https://h.example/x?api_key=zz&a=1", "https://h.example/x?api_key=***&a=1"),
        (
            "https://h.example/x?Token=a&SIG=b&page=3",
            "https://h.example/x?Token=***&SIG=***&page=3",
        ),
        ("http://[::1/x", "***"),  # unreadable: nothing of it shown
    ],
)
def test_credentials_are_masked_and_nothing_else(url: str, shown: str) -> None:
    assert masked(url) == shown
    assert masked(shown) == shown  # what is shown shows the same again
