"""Platform accounts (the appellants) and API bearer tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from appeals.db import Base, utcnow


class Account(Base):
    """A platform account, as the platform's account directory knows it."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The platform's numeric user id, as it appears in the datasets' userid column.
    user_id: Mapped[str] = mapped_column(String(64), unique=True)
    screen_name: Mapped[str] = mapped_column(String(64))
    # Lower-cased copy: screen names are unique regardless of letter case.
    screen_name_lower: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    followers: Mapped[int] = mapped_column(Integer, default=0)
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # issue 13: bumped to end every web session of this account (logout, password change).
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # issue 16: the owner's explicit language choice (appeals.i18n code); None = follow the browser.
    language: Mapped[str | None] = mapped_column(String(16))

    kind = "account"

    def get_id(self) -> str:
        """Flask-Login identity: prefixed so accounts, staff and researchers never collide."""
        return f"account:{self.id}"

    is_authenticated = True
    is_active = True
    is_anonymous = False


class ApiToken(Base):
    """A bearer token for /api/v1; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    principal_kind: Mapped[str] = mapped_column(String(16))  # account | staff | researcher
    principal_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
