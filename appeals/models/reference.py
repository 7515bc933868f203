"""Reason codes and message templates, managed by admins."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

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
    # issue 16: the body in the owners' other languages; `body` is the English one.
    translations: Mapped[list["MessageTemplateBody"]] = relationship(
        back_populates="template", cascade="all, delete-orphan", lazy="selectin")


class MessageTemplateBody(Base):
    """A message template's body in one owner language (English lives on the template itself)."""

    __tablename__ = "message_template_bodies"
    __table_args__ = (UniqueConstraint("template_id", "language", name="uq_message_template_bodies_template_language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("message_templates.id"))
    language: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    template: Mapped[MessageTemplate] = relationship(back_populates="translations")
