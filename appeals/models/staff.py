"""Staff accounts: reviewers, seniors and admins, separate from platform accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from appeals.db import Base, utcnow

# Ordered by power: each role can do what the ones before it can.
STAFF_ROLES = ("reviewer", "senior", "admin")


class Staff(Base):
    """A member of the review team; logs in with a password and a TOTP code."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    totp_secret: Mapped[str] = mapped_column(String(64))
    # The last accepted TOTP time step: a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    kind = "staff"

    def get_id(self) -> str:
        """Flask-Login identity."""
        return f"staff:{self.id}"

    @property
    def rank(self) -> int:
        return STAFF_ROLES.index(self.role)

    def has_role(self, role: str) -> bool:
        """True when this member's role is `role` or above."""
        return self.active and self.rank >= STAFF_ROLES.index(role)

    @property
    def is_active(self) -> bool:
        return self.active

    is_authenticated = True
    is_anonymous = False
