"""How messages leave: one adapter per channel. Each sends one message or raises
DeliveryFailed; retries, back-off and dead letters are the delivery loop's business.

The embedded default writes every message to a JSON-lines file (nothing leaves the machine);
production points e-mail at SMTP, SMS at a Twilio-compatible gateway, LINE at the Messaging
API and push at the browsers' push services (OMO_MESSAGING_ADAPTERS).
"""

from __future__ import annotations

import json
import smtplib
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from html import escape
from pathlib import Path
from typing import Protocol

import httpx

from omo.settings import Settings


class DeliveryFailed(Exception):
    """The provider did not take the message; `permanent` ones are not retried."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


@dataclass(frozen=True)
class Outgoing:
    key: str  # the message's idempotency key (providers that accept one get it)
    channel: str
    address: str
    subject: str | None
    body: str
    pixel_url: str | None = None  # an open-tracking image for HTML e-mail
    unsubscribe_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Adapter(Protocol):
    def send(self, message: Outgoing) -> str:
        """Hand the message over; returns the provider's reference."""
        ...


class FileAdapter:
    """Appends each message as a JSON line (the embedded default and the console)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send(self, message: Outgoing) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(message), ensure_ascii=False) + "\n")
        return f"file:{message.key}"


class SmtpAdapter:
    """E-mail over SMTP: a text part, an HTML part with the open pixel, and the one-click
    unsubscribe headers of RFC 8058."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings

    def send(self, message: Outgoing) -> str:
        mail = EmailMessage()
        mail["From"] = self.s.smtp_sender
        mail["To"] = message.address
        mail["Subject"] = message.subject or ""
        msgid = make_msgid(idstring=message.key.replace(":", "."), domain="omo.invalid")
        mail["Message-ID"] = msgid
        if message.unsubscribe_url:
            mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail.set_content(message.body)
        html = "<br>\n".join(escape(line) for line in message.body.splitlines())
        if message.pixel_url:
            html += f'\n<img src="{escape(message.pixel_url)}" width="1" height="1" alt="">'
        mail.add_alternative(f"<html><body>{html}</body></html>", subtype="html")
        try:
            with smtplib.SMTP(self.s.smtp_host, self.s.smtp_port, timeout=15) as smtp:
                if self.s.smtp_starttls:
                    smtp.starttls()
                if self.s.smtp_user:
                    smtp.login(self.s.smtp_user, self.s.smtp_password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(f"recipient refused: {exc.recipients}", permanent=True) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"smtp: {exc}") from exc
        return msgid


class SmsHttpAdapter:
    """SMS through a Twilio-compatible HTTP gateway (form POST, basic auth, JSON answer)."""

    def __init__(self, settings: Settings, client: httpx.Client | None = None) -> None:
        self.s = settings
        self.client = client or httpx.Client(timeout=15)

    def send(self, message: Outgoing) -> str:
        url = (
            f"{self.s.sms_base_url.rstrip('/')}/2010-04-01/Accounts/{self.s.sms_account}"
            "/Messages.json"
        )
        try:
            answer = self.client.post(
                url,
                data={"To": message.address, "From": self.s.sms_sender, "Body": message.body},
                auth=(self.s.sms_account, self.s.sms_token),
            )
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"sms gateway: {exc}") from exc
        if answer.status_code >= 400:
            # 4xx other than throttling: the request is wrong and will stay wrong
            permanent = answer.status_code < 500 and answer.status_code != 429
            raise DeliveryFailed(
                f"sms gateway HTTP {answer.status_code}: {answer.text[:200]}", permanent=permanent
            )
        return str(answer.json().get("sid", ""))


class LineAdapter:
    """LINE push messages through the official SDK, pointed at a configurable base URL. The
    message key becomes LINE's retry key, so a resend after a crash is not delivered twice."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings

    def send(self, message: Outgoing) -> str:
        from linebot.v3.messaging import (  # type: ignore[import-untyped]  # ~1.5 s to import
            ApiClient,
            ApiException,
            Configuration,
            MessagingApi,
            PushMessageRequest,
            TextMessage,
        )

        config = Configuration(
            host=self.s.line_base_url.rstrip("/"), access_token=self.s.line_channel_token
        )
        retry_key = str(uuid.uuid5(uuid.NAMESPACE_URL, f"omo:{message.key}"))
        try:
            with ApiClient(config) as client:
                answer = MessagingApi(client).push_message(
                    PushMessageRequest(
                        to=message.address, messages=[TextMessage(text=message.body)]
                    ),
                    x_line_retry_key=retry_key,
                )
        except ApiException as exc:
            if exc.status == 409:  # this retry key was accepted before: it is delivered
                return f"line:{retry_key}"
            status = exc.status or 0
            permanent = 400 <= status < 500 and status != 429
            raise DeliveryFailed(f"line HTTP {status}: {exc.reason}", permanent=permanent) from exc
        except Exception as exc:  # connection errors come from urllib3 underneath
            raise DeliveryFailed(f"line: {exc}") from exc
        sent = getattr(answer, "sent_messages", None) or []
        return f"line:{sent[0].id}" if sent else f"line:{retry_key}"


class WebPushAdapter:
    """Web push (VAPID) to a browser subscription; the address holds the subscription JSON."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings

    def send(self, message: Outgoing) -> str:
        from py_vapid import Vapid02  # type: ignore[import-untyped]
        from pywebpush import WebPushException, webpush  # type: ignore[import-untyped]

        key = self.s.vapid_private_key  # PEM, or the base64url DER pywebpush reads itself
        vapid = Vapid02.from_pem(key.encode()) if key.lstrip().startswith("-----BEGIN") else key
        payload = json.dumps({"title": message.subject or "", "body": message.body})
        try:
            answer = webpush(
                subscription_info=json.loads(message.address), data=payload,
                vapid_private_key=vapid,
                vapid_claims={"sub": self.s.vapid_subject}, timeout=15, ttl=86_400,
            )  # fmt: skip
        except WebPushException as exc:
            status = getattr(exc.response, "status_code", 0) or 0
            # 404/410: the subscription is gone for good
            raise DeliveryFailed(f"web push: {exc}", permanent=status in (404, 410)) from exc
        return f"push:{getattr(answer, 'status_code', '')}"


# the channels messages go out on, and the adapters OMO_MESSAGING_ADAPTERS may name for them
CHANNELS = ("email", "sms", "line", "push")
ADAPTER_KINDS = ("smtp", "http", "line", "webpush", "file")


def adapters_from(settings: Settings) -> dict[str, Adapter]:
    """The adapter of every channel: the JSON-lines file unless configured otherwise."""
    file = FileAdapter(Path(settings.messaging_file))
    kinds: dict[str, Callable[[], Adapter]] = {
        "smtp": lambda: SmtpAdapter(settings),
        "http": lambda: SmsHttpAdapter(settings),
        "line": lambda: LineAdapter(settings),
        "webpush": lambda: WebPushAdapter(settings),
        "file": lambda: file,
    }
    assert set(kinds) == set(ADAPTER_KINDS)
    chosen: dict[str, Adapter] = {}
    for channel in CHANNELS:
        kind = settings.messaging_adapters.get(channel, "file")
        if kind not in kinds:
            raise ValueError(f"unknown adapter {kind!r} for {channel} (one of {sorted(kinds)})")
        chosen[channel] = kinds[kind]()
    return chosen
