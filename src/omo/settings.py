"""Settings from OMO_* environment variables; nothing is connected at import time."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
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
    # Probabilistic identity resolution (`omo resolve`): pairs at or above auto-merge are merged,
    # pairs between review and auto-merge wait in the review queue, the rest are left alone.
    identity_auto_merge: float = Field(default=0.99, gt=0, le=1)
    identity_review: float = Field(default=0.3, gt=0, le=1)
    # duckdb (in process) or spark (OMO_SPARK_MASTER, e.g. spark://host:7077 or local[4])
    identity_engine: Literal["duckdb", "spark"] = "duckdb"
    spark_master: str = "local[2]"
    # where `omo refresh` computes segments and predictions: duckdb (in process) or spark
    analytics_engine: Literal["duckdb", "spark"] = "duckdb"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
