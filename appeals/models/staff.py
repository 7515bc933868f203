"""Staff accounts: reviewers, seniors and admins, separate from platform accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String
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
    # issue 13: bumped to end every web session (logout, TOTP reset, disable);
    # enrolled_at: when the member last enrolled an authenticator (new staff are flagged for 7 days).
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    enrolled_at: Mapped[datetime | None] = mapped_column(DateTime)

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


class StaffInvitation(Base):
    """issue 13: a one-time link by which a new member sets their own password and TOTP.

    The admin who invites never sees the link (it goes by email to the invitee) nor the
    secrets. Senior and admin invitations wait for a second admin's confirmation
    whenever another active admin exists.
    """

    __tablename__ = "staff_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    totp_secret: Mapped[str] = mapped_column(String(64))
    # awaiting_confirmation -> sent -> used; or cancelled
    status: Mapped[str] = mapped_column(String(24))
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
