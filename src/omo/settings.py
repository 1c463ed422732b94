"""Settings from OMO_* environment variables; nothing is connected at import time."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from omo.shared.schemas import MoneyIn


class Settings(BaseSettings):
    """Runtime configuration; every field can be set as OMO_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="OMO_", extra="ignore")

    database_url: str = "sqlite:///var/omo.sqlite"
    # Region used to read phone numbers written without a country code (0912-345-678).
    default_region: str = "TW"
    currency: str = "TWD"
    # The smallest amount the tills take: 0.01 (cents), or 1 where they take whole dollars
    # (a Taiwanese till). The discounts checkout works out (a level's price, a percent-off or
    # free-item coupon, the points paid with) and the money a return gives back are whole
    # numbers of it; prices and shipping come as the till sends them.
    price_unit: MoneyIn = Field(default=Decimal("0.01"), gt=0)
    # Seconds a SQLite writer waits for the lock before giving up.
    sqlite_busy_timeout_s: float = 30.0
    # A pooled PostgreSQL connection idle this long is pinged before it is used again (one
    # busy in the last seconds is used as it is: a ping costs a round trip per transaction).
    pg_ping_idle_s: float = Field(default=5.0, ge=0)
    # Whether a sale or a quote on PostgreSQL may run on the server's event loop, as on SQLite,
    # rather than be handed to its thread pool (db.runs_on_loop). auto: when the database is on
    # this machine (a Unix socket or a loopback address), where a round trip costs microseconds;
    # over a network each of a sale's round trips would hold every request of the worker.
    pg_on_loop: Literal["auto", "yes", "no"] = "auto"
    # Whether SQL statements are logged (never on in production: they may carry PII).
    echo_sql: bool = False
    # requests with a larger body are refused with 413 before they are read whole
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # each API key may make this many requests a second sustained, and this many at once
    rate_limit_per_s: float = Field(default=300.0, gt=0)
    rate_limit_burst: int = Field(default=1000, ge=1)
    # Largest batch accepted by POST /events.
    max_event_batch: int = 1000
    # Probabilistic identity resolution (`omo resolve`): pairs at or above auto-merge are merged,
    # pairs between review and auto-merge wait in the review queue, the rest are left alone.
    identity_auto_merge: float = Field(default=0.99, gt=0, le=1)
    identity_review: float = Field(default=0.3, gt=0, le=1)
    # clusters merged per write transaction: larger is faster, but on SQLite the shop's writers
    # wait for each transaction (about 0.3 s at 200 on two cores, 1.4 s at 1,000)
    identity_merge_batch: int = Field(default=200, ge=1)
    # duckdb (in process) or spark (OMO_SPARK_MASTER, e.g. spark://host:7077 or local[4])
    identity_engine: Literal["duckdb", "spark"] = "duckdb"
    spark_master: str = "local[2]"
    # where `omo refresh` computes segments and predictions: duckdb (in process) or spark
    analytics_engine: Literal["duckdb", "spark"] = "duckdb"
    # --- the web UI ---------------------------------------------------------------------------
    # signs session cookies and member-card links; empty: made once and kept in var/secret.key
    secret_key: str = ""
    # send the session cookie over HTTPS only (on behind TLS in production)
    cookie_secure: bool = False
    # --- journeys and messaging --------------------------------------------------------------
    # the brand's time zone: birthdays, quiet hours and "today" for members with no country
    time_zone: str = "Asia/Taipei"
    # how messages name the brand, and where their shop links point
    brand_name: str = "OMO"
    shop_url: str = "https://shop.example.com"
    # a member's referral link: the shop's sign-up page, which enrols with the code ({code});
    # empty: <shop_url>/join?ref={code}
    referral_url: str = Field(default="", pattern=r"^$|^https?://[^\s]*\{code\}[^\s]*$")
    # where links in messages point (tracking, unsubscribe, coupon QR): this server, as members
    # reach it
    public_url: str = "http://127.0.0.1:8000"
    # how messages leave: console (a JSON-lines file, the embedded default) or the real adapters
    # per channel; e.g. OMO_MESSAGING_ADAPTERS='{"email": "smtp", "sms": "http", "line": "line"}'
    messaging_adapters: dict[str, str] = Field(default_factory=dict)
    messaging_file: str = "var/messages.jsonl"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65_535)
    smtp_sender: str = "OMO <no-reply@omo.invalid>"
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    # a Twilio-compatible SMS gateway: POST {base}/2010-04-01/Accounts/{account}/Messages.json
    sms_base_url: str = "https://api.twilio.com"
    sms_account: str = ""
    sms_token: str = ""
    sms_sender: str = ""
    # LINE Messaging API (push); the base URL can point at a proxy or a test server
    line_base_url: str = "https://api.line.me"
    line_channel_token: str = ""
    # web push (VAPID): the private key (PEM or base64url) and the contact claimed in the token
    vapid_private_key: str = ""
    vapid_subject: str = "mailto:ops@omo.invalid"
    # at most this many marketing messages per member and channel in 7 days
    message_caps: dict[str, int] = Field(
        default_factory=lambda: {"email": 3, "sms": 2, "line": 3, "push": 5}
    )
    # no marketing message arrives between these local hours (start > end wraps midnight)
    quiet_start_hour: int = Field(default=21, ge=0, le=23)
    quiet_end_hour: int = Field(default=9, ge=0, le=23)
    # `omo serve` runs a scheduler pass (journeys, message delivery) every this many seconds in
    # process — the embedded default; 0 leaves it to `omo jobs worker`
    jobs_every_s: int = Field(default=0, ge=0)
    # `omo serve` sets it: once the app is built, move every object alive into the collector's
    # permanent generation, so that a full collection scans what requests made, not the whole
    # interpreter (full collections paused requests for 50-100 ms; docs/performance.md)
    gc_freeze: bool = False
    # on PostgreSQL a fact is read from the outbox once it is this old: a transaction that took a
    # lower id may commit after one with a higher id (SQLite's single writer commits in order)
    outbox_settle_s: float = Field(default=5.0, ge=0)
    # facts published longer ago than this, once the journeys have read them, are removed by the
    # scheduler's pass (a sale writes one: kept forever, the table grows with every sale); a
    # webhook or a polling reader still behind them is told (docs/webhooks.md). 0: keep all
    outbox_retention_days: int = Field(default=90, ge=0, le=36_500)
    # a webhook failing this many hours in a row (and 10 attempts) is switched off by the
    # scheduler's pass, its facts waiting, until an admin switches it back on. 0: never
    webhook_switch_off_after_h: int = Field(default=72, ge=0, le=8_760)
    # a message that failed this many times is dead-lettered
    message_max_attempts: int = Field(default=5, ge=1, le=50)

    @field_validator("database_url")
    @classmethod
    def _a_database_omo_takes(cls, url: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            backend = make_url(url).get_backend_name()
        except ArgumentError:
            backend = None
        if backend not in ("sqlite", "postgresql"):
            raise ValueError("not a database OMO takes: sqlite:///path or postgresql://host/db")
        return url

    @field_validator("time_zone")
    @classmethod
    def _a_known_zone(cls, name: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(name)
        except (KeyError, ValueError):
            raise ValueError("not a time zone this machine knows (Asia/Taipei …)") from None
        return name

    @field_validator("default_region")
    @classmethod
    def _a_region_phones_are_read_in(cls, region: str) -> str:
        import phonenumbers

        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("not a region phone numbers are known for (TW, HK, JP, US …)")
        return region

    @field_validator("currency")
    @classmethod
    def _a_currency(cls, code: str) -> str:
        from babel.numbers import is_currency

        if not is_currency(code):
            raise ValueError("not an ISO 4217 currency code (TWD, HKD, USD …)")
        return code

    @field_validator("public_url", "shop_url", "sms_base_url", "line_base_url")
    @classmethod
    def _a_web_address(cls, url: str) -> str:
        if not re.fullmatch(r"https?://[^\s/?#]+(/\S*)?", url):
            raise ValueError("not a web address: http:// or https:// and a host")
        return url

    @field_validator("secret_key")
    @classmethod
    def _a_key_hard_to_guess(cls, key: str) -> str:
        if key and len(key) < 32:  # it signs sessions and card links: a short one is guessed
            raise ValueError("at least 32 characters (or empty: one is made and kept)")
        return key

    @field_validator("messaging_adapters")
    @classmethod
    def _adapters_known(cls, chosen: dict[str, str]) -> dict[str, str]:
        from omo.messaging.adapters import ADAPTER_KINDS

        _channels_known(chosen)
        for kind in chosen.values():
            if kind not in ADAPTER_KINDS:
                raise ValueError(f"no adapter {kind!r}; the adapters: {', '.join(ADAPTER_KINDS)}")
        return chosen

    @field_validator("message_caps")
    @classmethod
    def _caps_per_channel(cls, caps: dict[str, int]) -> dict[str, int]:
        _channels_known(caps)
        for channel, cap in caps.items():
            if cap < 0:
                raise ValueError(f"{channel}: a cap is 0 or more messages")
        return caps

    @property
    def referral_link(self) -> str:
        """The referral link's template, `{code}` where a member's code goes."""
        return self.referral_url or self.shop_url.rstrip("/") + "/join?ref={code}"


def _channels_known(per_channel: Iterable[str]) -> None:
    from omo.messaging.adapters import CHANNELS

    for channel in per_channel:
        if channel not in CHANNELS:
            raise ValueError(f"no channel {channel!r}; the channels: {', '.join(CHANNELS)}")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
