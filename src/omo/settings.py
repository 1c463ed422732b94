"""Settings from OMO_* environment variables; nothing is connected at import time."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration; every field can be set as OMO_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="OMO_", extra="ignore")

    database_url: str = "sqlite:///var/omo.sqlite"
    # Region used to read phone numbers written without a country code (0912-345-678).
    default_region: str = "TW"
    currency: str = "TWD"
    # Seconds a SQLite writer waits for the lock before giving up.
    sqlite_busy_timeout_s: float = 30.0
    # Whether SQL statements are logged (never on in production: they may carry PII).
    echo_sql: bool = False
    # Largest batch accepted by POST /events.
    max_event_batch: int = 1000


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
