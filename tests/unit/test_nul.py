"""The NUL character refused at the door (ops/nul.py), as an ASGI server hands a body over: in
parts, an escape split between two of them."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omo.ops.nul import NoNul, carries_nul


def _run(body_parts: list[bytes], *, form: bool = False, path: str = "/x",
         query: bytes = b"", kind: bytes | None = None) -> tuple[int, bytes]:  # fmt: skip
    """(status, body) of a request through NoNul to an app that reads the whole body and
    echoes it."""
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": part, "more_body": n < len(body_parts) - 1}
                for n, part in enumerate(body_parts)]  # fmt: skip

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ConnectionError("the client went")  # as a framework would
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    kind = kind or (b"application/x-www-form-urlencoded" if form else b"application/json")
    scope = {"type": "http", "path": path, "query_string": query,
             "headers": [(b"content-type", kind)]}  # fmt: skip
    asyncio.run(NoNul(app)(scope, receive, send))
    return sent[0]["status"], sent[1]["body"]


@pytest.mark.parametrize("parts", [
    [b'{"a": "x\\u0000"}'],
    [b'{"a": "x\\u00', b'00"}'],  # the escape split between two parts
    [b'{"a": "x\\', b'u0000"}'],
    [b'{"a": "x', b"\\\\\\u0000", b'"}'],  # three backslashes: an escaped one, then NUL
    [b'{"a": "x\x00"}'],
])  # fmt: skip
def test_nul_in_json_is_refused_in_whatever_parts_it_comes(parts: list[bytes]) -> None:
    status, body = _run(parts)
    assert status == 422
    assert json.loads(body)["detail"][0] == {
        "loc": ["body"], "msg": "text must not hold the NUL character (\\u0000)",
        "type": "nul_character"}  # fmt: skip


@pytest.mark.parametrize("parts", [
    [b'{"a": "x\\\\u0000"}'],  # a backslash, then the text u0000
    [b'{"a": "x\\\\', b'u0000"}'],
    [b'{"a": "%00 u0000"}'],
    [b'{"a": "x"}'],
    [b""],
])  # fmt: skip
def test_text_that_only_looks_like_nul_passes_whole(parts: list[bytes]) -> None:
    assert _run(parts) == (200, b"".join(parts))


def test_forms_queries_and_paths() -> None:
    assert _run([b"name=a%00b"], form=True)[0] == 422
    assert _run([b"name=a%00b"], kind=b"Application/X-WWW-Form-URLEncoded; charset=UTF-8")[0] == 422
    assert _run([b"name=a%2500b"], form=True) == (200, b"name=a%2500b")  # the text "%00"
    assert _run([b"name=a\\u0000b"], form=True)[0] == 200  # not an escape in a form
    assert _run([b"{}"], query=b"q=a%00")[0] == 422
    assert _run([b"{}"], query=b"q=a%2500")[0] == 200
    status, body = _run([b"{}"], path="/api/v1/rewards/A\x00B")
    assert (status, json.loads(body)["detail"][0]["loc"]) == (422, ["path"])


def test_carries_nul() -> None:
    assert carries_nul(b'"\\\\\\u0000"', form=False)
    assert not carries_nul(b'"\\\\\\\\u0000"', form=False)
    assert carries_nul(b"a=%00", form=True) and not carries_nul(b"a=%00", form=False)


def _escapes_nul(body: bytes) -> bool:
    """The reference: a raw NUL anywhere, or the escape of one read as JSON reads a string's
    escapes, left to right."""
    if b"\x00" in body:
        return True
    i = 0
    while i < len(body):
        if body[i : i + 1] == b"\\":
            if body[i + 1 : i + 6] == b"u0000":
                return True
            i += 2  # the escaped character, a backslash included
            continue
        i += 1
    return False


@given(
    st.lists(st.sampled_from([b"\\", b"\\\\", b"u", b"0", b"00", b"u0000", b"\\u0000", b'"',
                              b"a", b"%", b"\x00"]), max_size=30),
    st.lists(st.integers(min_value=0, max_value=200), max_size=4),
)  # fmt: skip
@settings(max_examples=int(os.environ.get("OMO_EXAMPLES", "300")), deadline=None)
def test_the_guard_refuses_exactly_the_bodies_holding_nul_however_they_are_cut(
    pieces: list[bytes], cuts: list[int]
) -> None:
    body = b"".join(pieces)
    assert carries_nul(body, form=False) == _escapes_nul(body)
    at = sorted({min(c, len(body)) for c in cuts})
    parts = [body[a:b] for a, b in zip([0, *at], [*at, len(body)], strict=True)]
    status, _ = _run(parts)
    assert status == (422 if _escapes_nul(body) else 200)
