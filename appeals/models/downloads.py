"""Public downloads, their log, notices to earlier downloaders, and licensed researchers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Mapped, mapped_column

from appeals.db import Base, utcnow

RESEARCHER_STATUSES = ("pending", "approved", "rejected", "revoked")


class DownloadRequest(Base):
    """A visitor who gave an email and accepted the terms for one release and variant."""

    __tablename__ = "download_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    dataset: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    variant: Mapped[str] = mapped_column(String(16))
    researcher_id: Mapped[int | None] = mapped_column(ForeignKey("researchers.id"))
    accepted_terms_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # issue 16: the language of the page the request came from; the downloader's emails use it.
    language: Mapped[str | None] = mapped_column(String(16))


class DownloadLog(Base):
    """One file actually downloaded: who, what, when."""

    __tablename__ = "download_log"
    __table_args__ = (Index("ix_download_log_release", "dataset", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    dataset: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    variant: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(255))
    researcher_id: Mapped[int | None] = mapped_column(ForeignKey("researchers.id"))
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # issue 13: False when the links were shown on screen (demo), so the address was never proven;
    # only proven addresses receive notices.
    proven: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())


class DownloadNotice(Base):
    """The one email telling an earlier downloader that their version was superseded."""

    __tablename__ = "download_notices"
    __table_args__ = (UniqueConstraint("email", "dataset", "old_version", name="uq_download_notices_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    dataset: Mapped[str] = mapped_column(String(128))
    old_version: Mapped[int] = mapped_column(Integer)
    new_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Researcher(Base):
    """A specialist researcher applying for, or holding, licensed access to unhashed data."""

    __tablename__ = "researchers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    institution: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    purpose: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(String(255))
    licence_accepted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # issue 13: bumped to end every web session of this researcher.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    kind = "researcher"

    def get_id(self) -> str:
        """Flask-Login identity."""
        return f"researcher:{self.id}"

    is_authenticated = True
    is_active = True
    is_anonymous = False
