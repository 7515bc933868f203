"""Outgoing email, written in the same transaction as the change it reports; delivered by a worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from appeals.db import Base, utcnow


class OutboxMessage(Base):
    """An email: pending until a worker claims it (`sending`), then `sent`, or `logged` without SMTP.

    `merged`: replaced by a later message with the same merge key before it was due;
    `failed`: gave up after the last attempt.
    """

    __tablename__ = "outbox"
    # The worker's claim reads due pending rows in deadline order.
    __table_args__ = (Index("ix_outbox_status_not_before", "status", "not_before"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    to_addr: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    # pending|sending|sent|logged|merged|failed
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Not sent before this time: a status email is held so that quick successive changes merge.
    not_before: Mapped[datetime | None] = mapped_column(DateTime)
    # Messages sharing a key replace each other while waiting (one appeal's status emails).
    merge_key: Mapped[str | None] = mapped_column(String(64), index=True)
    # The worker that claimed it, and when: a claim older than the lease is taken again.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
