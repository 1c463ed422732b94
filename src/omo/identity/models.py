"""The audit trail of merges (what moved where, so an unmerge can put it back), probabilistic
resolution runs and the review queue of pairs in the grey zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from omo.db import Base
from omo.shared.sqltypes import UtcDateTime


class Merge(Base):
    __tablename__ = "identity_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survivor_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    absorbed_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    # shared_identifier (deterministic, at write time), probabilistic (a resolution run),
    # review (a person accepted a pair the run queued) or manual
    reason: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    # {"area.table": [row ids]} re-pointed from absorbed to survivor
    moved: Mapped[dict[str, list[int]]] = mapped_column(JSON)
    # {"profile": {field: [before, after]}, "consents": {channel: [before, after]}}
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    undone_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    undone_by: Mapped[str | None] = mapped_column(String(80))


class ResolutionRun(Base):
    """One probabilistic resolution run: what it saw, the model it trained, what it decided."""

    __tablename__ = "identity_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engine: Mapped[str] = mapped_column(String(16))  # duckdb or spark
    status: Mapped[str] = mapped_column(String(16))  # running, done, failed
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # {"auto_merge": 0.99, "review": 0.5}
    thresholds: Mapped[dict[str, float]] = mapped_column(JSON)
    records: Mapped[int] = mapped_column(Integer, default=0)
    pairs_scored: Mapped[int] = mapped_column(Integer, default=0)
    merges: Mapped[int] = mapped_column(Integer, default=0)
    reviews_queued: Mapped[int] = mapped_column(Integer, default=0)
    # the trained model: prior, and per comparison level its m, u and match weight
    model: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # KPIs before and after: active members, estimated duplicate-account rate, identification
    kpis: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    timings: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(String(500))


class MatchReview(Base):
    """A pair in the grey zone, for a person to decide; a rejection is remembered for good."""

    __tablename__ = "identity_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))  # the lower id
    other_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("identity_runs.id"))
    match_probability: Mapped[float] = mapped_column(Float)
    match_weight: Mapped[float] = mapped_column(Float)
    # {comparison: {"level": label, "weight": bits}}: why the model thinks so
    weights: Mapped[dict[str, Any]] = mapped_column(JSON)
    # pending, accepted, rejected, obsolete (members merged some other way, or no longer paired)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(80))
    merge_id: Mapped[int | None] = mapped_column(ForeignKey("identity_merges.id"))

    __table_args__ = (
        UniqueConstraint("member_id", "other_member_id"),
        Index("ix_identity_reviews_status", "status", "match_probability"),
    )
