"""Text with the NUL character is refused at the door (422), whatever the route.

PostgreSQL's text cannot hold NUL: a name, a SKU, a receipt number or a search with one reached
the first INSERT or WHERE and came back a 500 (`DataError`), after the request had been taken
for good; SQLite stored it. No field of OMO means NUL, so a request carrying one in its path,
its query or its body is refused before any route reads it, on both backends alike."""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# JSON's escape of NUL: `\u0000` after an even run of backslashes (`\\u0000` is a backslash
# and the text "u0000")
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_FORM = b"application/x-www-form-urlencoded"


def carries_nul(body: bytes, *, form: bool) -> bool:
    """Whether a body holds NUL: a raw byte, JSON's escape, or a form's `%00` (a form's own
    "%" is sent as `%25`)."""
    if b"\x00" in body:
        return True
    if form:
        return b"%00" in body
    return b"u0000" in body and _JSON_NUL.search(body) is not None


class NoNul:
    """ASGI middleware: a request whose path, query string or body carries NUL is answered 422
    with the part named. The body is passed on as it comes; its last part only once the whole
    is known to be clean (an app cannot act on a body before it has all of it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if "\x00" in scope["path"]:
            await _refuse(send, "path")
            return
        if b"%00" in query or b"\x00" in query:
            await _refuse(send, "query")
            return
        kind = dict(scope.get("headers") or []).get(b"content-type", b"")
        form = kind[: len(_FORM)].lower() == _FORM
        parts: list[bytes] = []
        refused = False

        async def clean() -> Message:
            nonlocal refused
            message = await receive()
            if message["type"] != "http.request" or refused:
                return message
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                body = parts[0] if len(parts) == 1 else b"".join(parts)
                if carries_nul(body, form=form):
                    refused = True
                    await _refuse(send, "body")
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            if not refused:  # the 422 has been sent: whatever the app says now is dropped
                await send(message)

        try:
            await self.app(scope, clean, guarded)
        except Exception:
            if not refused:  # refused: the app was told the client had gone, and may say so
                raise


async def _refuse(send: Send, part: str) -> None:
    error = {"loc": [part], "msg": "text must not hold the NUL character (\\u0000)",
             "type": "nul_character"}  # fmt: skip
    await send({"type": "http.response.start", "status": 422,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": json.dumps({"detail": [error]}).encode()})
