"""Evidence files an owner attached to an appeal (at filing or in a reply); the bytes live in the blob store."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from appeals.db import Base, utcnow


class Attachment(Base):
    """One checked, metadata-free file: its name as uploaded, its recognised type, and its blob's sha256."""

    __tablename__ = "appeal_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    # The reply it came with; None for files attached at filing.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("appeal_messages.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
