"""Corrections: one per confirmed approval, taken by coalesced runs of the worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from appeals.db import Base, utcnow

CORRECTION_STATUSES = ("queued", "running", "done", "failed")


class Correction(Base):
    """The change one confirmed approval asks of the published data (the outbox record)."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id"), unique=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    remedy: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("correction_runs.id"), index=True)
    releases: Mapped[dict | None] = mapped_column(JSON)  # dataset -> new version
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    appeal = relationship("Appeal", lazy="joined")
    run = relationship("CorrectionRun", lazy="joined")


class CorrectionRun(Base):
    """One worker run: a batch of corrections applied together under one batch id."""

    __tablename__ = "correction_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the engine's batch id
    status: Mapped[str] = mapped_column(String(16), default="running")
    job_id: Mapped[str | None] = mapped_column(String(128))
    fence: Mapped[int | None] = mapped_column(Integer)
    items: Mapped[list | None] = mapped_column(JSON)  # [[user_id, remedy], ...]
    releases: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    bytes_written: Mapped[int | None] = mapped_column(Integer)
    files_rewritten: Mapped[int | None] = mapped_column(Integer)
    duration_s: Mapped[float | None] = mapped_column(Float)
    operator: Mapped[str | None] = mapped_column(String(255))  # issue 11: an operator run's actor and reason,
    reason: Mapped[str | None] = mapped_column(Text)  # recorded on its standing decisions
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class StandingDecision(Base):
    """The ledger: one confirmed remedy of an account, which every later import obeys until revoked.

    Standing means neither revoked nor superseded by a later decision for the same account.
    """

    __tablename__ = "standing_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    remedy: Mapped[str] = mapped_column(String(16))
    epoch: Mapped[int] = mapped_column(Integer)  # the pseudonym epoch the account moved to
    screen_names: Mapped[list | None] = mapped_column(JSON)  # lowercased, for @handles in later imports
    run_id: Mapped[str | None] = mapped_column(String(64))
    appeal_id: Mapped[int | None] = mapped_column(ForeignKey("appeals.id"))
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    operator: Mapped[str | None] = mapped_column(String(255))  # who ran `corrections apply`
    reason: Mapped[str | None] = mapped_column(Text)  # the operator's reason (never published)
    decided_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("standing_decisions.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(255))
    revoke_reason: Mapped[str | None] = mapped_column(Text)

    @property
    def standing(self) -> bool:
        """True while the decision binds future imports."""
        return self.revoked_at is None and self.superseded_by_id is None
