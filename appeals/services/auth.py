"""Credentials: who a login or a bearer token belongs to."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import timedelta

import pyotp
from sqlalchemy import func, or_, select

from appeals import db
from appeals.db import utcnow
from appeals.models import Account, ApiToken, Researcher, Staff
from appeals.services.passwords import verify_password

TOKEN_LIFETIME = timedelta(hours=12)


def find_account(identifier: str) -> Account | None:
    """The account whose screen name (any letter case) or email is `identifier`."""
    ident = identifier.strip().lstrip("@").lower()
    if not ident:
        return None
    return db.session.scalar(
        select(Account).where(or_(Account.screen_name_lower == ident, func.lower(Account.email) == ident))
    )


def authenticate_account(identifier: str, password: str) -> Account | None:
    """The account for a screen name or email and password, or None."""
    account = find_account(identifier)
    ok = verify_password(account.password_hash if account else None, password)
    return account if ok else None


def find_staff(email: str) -> Staff | None:
    """The staff member with this email (any letter case)."""
    return db.session.scalar(select(Staff).where(func.lower(Staff.email) == email.strip().lower()))


def check_totp(staff: Staff, code: str) -> bool:
    """Accept a current TOTP code once: a replayed code from an earlier login is refused."""
    code = (code or "").strip().replace(" ", "")
    if not code.isdigit():
        return False
    totp = pyotp.TOTP(staff.totp_secret)
    now_step = int(time.time()) // totp.interval
    for step in (now_step - 1, now_step, now_step + 1):  # one step of clock drift either way
        if secrets.compare_digest(totp.at(step * totp.interval), code):
            if staff.totp_last_step is not None and step <= staff.totp_last_step:
                return False
            staff.totp_last_step = step
            return True
    return False


def authenticate_staff(email: str, password: str, otp: str) -> Staff | None:
    """The active staff member for email, password and a fresh TOTP code, or None (caller commits)."""
    staff = find_staff(email)
    if not verify_password(staff.password_hash if staff else None, password):
        return None
    if not staff.active or not check_totp(staff, otp):
        return None
    return staff


def authenticate_researcher(email: str, password: str) -> Researcher | None:
    """The researcher for an email and password, or None (access is checked by the policy)."""
    researcher = db.session.scalar(select(Researcher).where(func.lower(Researcher.email) == email.strip().lower()))
    ok = verify_password(researcher.password_hash if researcher else None, password)
    return researcher if ok else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(principal) -> str:
    """Create a bearer token for `principal` and commit it; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    db.session.add(
        ApiToken(
            token_hash=_digest(token),
            principal_kind=principal.kind,
            principal_id=principal.id,
            expires_at=utcnow() + TOKEN_LIFETIME,
        )
    )
    db.session.commit()
    return token


PRINCIPAL_MODELS = {"account": Account, "staff": Staff, "researcher": Researcher}


def load_principal(kind: str, principal_id: int):
    """The Account, Staff or Researcher for a (kind, id) pair, or None."""
    model = PRINCIPAL_MODELS.get(kind)
    return db.session.get(model, principal_id) if model else None


def resolve_token(token: str):
    """The principal a live bearer token belongs to, or None."""
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.revoked or row.expires_at <= utcnow():
        return None
    principal = load_principal(row.principal_kind, row.principal_id)
    if principal is None or not principal.is_active:
        return None
    return principal
