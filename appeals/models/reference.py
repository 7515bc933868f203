"""Reason codes and message templates, managed by admins."""

from __future__ import annotations

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from appeals.db import Base


class ReasonCode(Base):
    """A coded reason attached to every decision and sent to the owner with it."""

    __tablename__ = "reason_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    applies_to: Mapped[str] = mapped_column(String(16), default="any")  # approve | deny | any
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class MessageTemplate(Base):
    """A reusable text with {placeholders}; it cannot be sent until every one is filled."""

    __tablename__ = "message_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    body: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
