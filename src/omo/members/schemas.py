"""Request and response shapes of the members area."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator

from omo.members.identifiers import IdentifierKind
from omo.shared import clock
from omo.shared.schemas import AwareDatetime, ReadModel, StrictModel


class ConsentChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    LINE = "line"
    PUSH = "push"


Gender = Literal["female", "male", "other", "unknown"]
Language = Literal["zh-TW", "zh-CN", "en"]


class IdentifierIn(StrictModel):
    kind: IdentifierKind
    value: str = Field(min_length=1, max_length=254)
    namespace: str | None = Field(default=None, max_length=24)


class ProfileFields(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    gender: Gender | None = None
    birth_date: date | None = None
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    postal_code: str | None = Field(default=None, max_length=16)
    city: str | None = Field(default=None, max_length=64)
    district: str | None = Field(default=None, max_length=64)
    address_line: str | None = Field(default=None, max_length=300)
    preferred_language: Language | None = None

    @field_validator("birth_date")
    @classmethod
    def _plausible_birth_date(cls, value: date | None) -> date | None:
        if value is not None and not date(1900, 1, 1) <= value <= clock.now().date():
            raise ValueError("birth date must lie between 1900-01-01 and today")
        return value


class MemberUpsert(ProfileFields):
    """Enrol a person, or update the member that any of the identifiers already names."""

    identifiers: list[IdentifierIn] = Field(min_length=1, max_length=20)
    joined_at: AwareDatetime | None = None
    join_channel: Literal["pos", "web", "app", "shopee", "momo", "line"] | None = None
    join_store: str | None = Field(default=None, max_length=32, description="store code")
    consents: dict[ConsentChannel, bool] = Field(default_factory=dict)
    referral_code: str | None = Field(
        default=None, max_length=16, description="who brought a new member (ignored for existing)"
    )


class IdentifierRead(ReadModel):
    kind: str
    namespace: str
    value: str
    source_channel: str | None
    created_at: datetime


class ConsentRead(ReadModel):
    channel: str
    granted: bool
    source: str | None
    updated_at: datetime


class MemberRead(ReadModel):
    id: int
    status: str
    merged_into_id: int | None
    name: str | None
    gender: str | None
    birth_date: date | None
    country: str | None
    postal_code: str | None
    city: str | None
    district: str | None
    address_line: str | None
    preferred_language: str | None
    joined_at: datetime
    join_channel: str | None
    join_store_id: int | None
    created_at: datetime
    updated_at: datetime


class MemberSummary(ReadModel):
    id: int
    name: str | None
    joined_at: datetime
