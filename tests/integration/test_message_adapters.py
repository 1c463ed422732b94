"""The delivery adapters against real servers in process: an SMTP server (aiosmtpd), and HTTP
servers standing where a Twilio-compatible SMS gateway and the LINE Messaging API would be."""

from __future__ import annotations

import base64
import email
import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import http_ece  # type: ignore[import-untyped]
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02  # type: ignore[import-untyped]

from omo.messaging.adapters import (
    DeliveryFailed,
    LineAdapter,
    Outgoing,
    SmsHttpAdapter,
    SmtpAdapter,
    WebPushAdapter,
    adapters_from,
)
from omo.settings import Settings

MAIL = Outgoing(
    key="journey:1:2", channel="email", address="mei@example.com", subject="歡迎加入",
    body="王小明 您好\n逛逛新品：http://x/t/abc/c/0", pixel_url="http://x/t/abc/open.gif",
    unsubscribe_url="http://x/t/abc/unsubscribe",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def test_smtp_sends_text_html_and_one_click_unsubscribe(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    ref = SmtpAdapter(Settings(smtp_port=port, smtp_sender="品牌 <hi@brand.tw>")).send(MAIL)
    assert len(inbox.messages) == 1
    envelope = inbox.messages[0]
    assert envelope.rcpt_tos == ["mei@example.com"]
    mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert mail["Subject"] == "歡迎加入" and mail["Message-ID"] == ref
    assert mail["List-Unsubscribe"] == "<http://x/t/abc/unsubscribe>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "王小明 您好" in text and 'src="http://x/t/abc/open.gif"' in html


def test_smtp_down_is_a_retryable_failure() -> None:
    with pytest.raises(DeliveryFailed) as err:
        SmtpAdapter(Settings(smtp_port=free_port())).send(MAIL)
    assert not err.value.permanent


class Gateway:
    """An HTTP server answering each request with the next (status, body) of a script."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]]]) -> None:
        self.answers, self.requests = answers, []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                gateway.requests.append((self.path, dict(self.headers), self.rfile.read(length)))
                status, body = gateway.answers.pop(0)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


SMS = Outgoing(key="journey:3:1", channel="sms", address="+886912345678", subject=None,
               body="【OMO】首購優惠等您使用")  # fmt: skip


def test_sms_gateway_gets_the_twilio_request_shape() -> None:
    gw = Gateway([(201, {"sid": "SM123"})])
    settings = Settings(sms_base_url=gw.url, sms_account="AC1", sms_token="t0k", sms_sender="OMO")
    try:
        assert SmsHttpAdapter(settings).send(SMS) == "SM123"
    finally:
        gw.close()
    path, headers, body = gw.requests[0]
    assert path == "/2010-04-01/Accounts/AC1/Messages.json"
    assert headers["Authorization"].startswith("Basic ")
    form = parse_qs(body.decode())
    assert form == {"To": ["+886912345678"], "From": ["OMO"], "Body": ["【OMO】首購優惠等您使用"]}


@pytest.mark.parametrize(("status", "permanent"), [(500, False), (429, False), (400, True)])
def test_sms_gateway_errors(status: int, permanent: bool) -> None:
    gw = Gateway([(status, {"message": "nope"})])
    try:
        with pytest.raises(DeliveryFailed) as err:
            SmsHttpAdapter(Settings(sms_base_url=gw.url, sms_account="AC1")).send(SMS)
    finally:
        gw.close()
    assert err.value.permanent is permanent and str(status) in str(err.value)


def test_line_push_through_the_sdk_with_a_retry_key() -> None:
    gw = Gateway([(200, {"sentMessages": [{"id": "481", "quoteToken": "q"}]}),
                  (409, {"message": "The retry key is already accepted"})])  # fmt: skip
    adapter = LineAdapter(Settings(line_base_url=gw.url, line_channel_token="secret"))
    message = Outgoing(key="journey:5:0", channel="line", address="U4af4980629", subject=None,
                       body="生日快樂！")  # fmt: skip
    try:
        assert adapter.send(message) == "line:481"
        # a resend after a crash: LINE says the key was taken, so it counts as delivered once
        assert adapter.send(message).startswith("line:")
    finally:
        gw.close()
    (path, headers, body), (_, again, _) = gw.requests
    assert path == "/v2/bot/message/push"
    assert headers["Authorization"] == "Bearer secret"
    assert headers["X-Line-Retry-Key"] == again["X-Line-Retry-Key"]
    sent = json.loads(body)
    assert sent["to"] == "U4af4980629"
    assert [(m["type"], m["text"]) for m in sent["messages"]] == [("text", "生日快樂！")]


def test_unknown_adapter_is_refused() -> None:
    with pytest.raises(ValueError, match="no adapter 'pigeon'"):
        adapters_from(Settings(messaging_adapters={"sms": "pigeon"}))


def _subscription(endpoint: str) -> tuple[str, Any, bytes]:
    """A browser's side of a push subscription: its key pair and auth secret."""
    receiver = ec.generate_private_key(ec.SECP256R1())
    public = receiver.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    auth = os.urandom(16)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    sub = {"endpoint": endpoint, "keys": {"p256dh": b64(public), "auth": b64(auth)}}
    return json.dumps(sub), receiver, auth


def test_web_push_is_encrypted_for_the_browser_and_signed_with_vapid() -> None:
    gw = Gateway([(201, {}), (410, {"reason": "gone"})])
    vapid = Vapid02()
    vapid.generate_keys()
    settings = Settings(vapid_private_key=vapid.private_pem().decode())
    address, receiver, auth = _subscription(f"{gw.url}/push/abc")
    message = Outgoing(key="journey:9:1", channel="push", address=address, subject="生日快樂",
                       body="送您生日禮券")  # fmt: skip
    try:
        assert WebPushAdapter(settings).send(message) == "push:201"
        with pytest.raises(DeliveryFailed) as err:  # the browser unsubscribed: gone for good
            WebPushAdapter(settings).send(message)
    finally:
        gw.close()
    assert err.value.permanent
    path, headers, body = gw.requests[0]
    assert path == "/push/abc"
    h = {k.lower(): v for k, v in headers.items()}
    assert h["content-encoding"] == "aes128gcm" and h["ttl"] == "86400"
    assert h["authorization"].startswith("vapid t=")
    plain = http_ece.decrypt(body, private_key=receiver, auth_secret=auth, version="aes128gcm")
    assert json.loads(plain) == {"title": "生日快樂", "body": "送您生日禮券"}
