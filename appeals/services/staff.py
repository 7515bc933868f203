"""Staff accounts: creation, enabling and disabling, TOTP enrolment and the two-step login."""

from __future__ import annotations

import re
import time

import pyotp
import segno
from sqlalchemy import select

from appeals import db, runtime
from appeals.models import STAFF_ROLES, ApiToken, Staff
from appeals.services import audit, auth, policy
from appeals.services.audit import Actor
from appeals.services.errors import Forbidden, Invalid, NotFound
from appeals.services.passwords import hash_password, password_problem, verify_password

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
ISSUER = "Dataset appeals"


def is_enrolled(staff: Staff) -> bool:
    """True once the member has proved, with one accepted code, that their authenticator works."""
    # An accepted code records its time step; a fresh or reset secret has none.
    return staff.totp_last_step is not None


def provisioning_uri(staff: Staff) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(staff.totp_secret).provisioning_uri(name=staff.email, issuer_name=ISSUER)


def qr_data_uri(staff: Staff) -> str:
    """The enrolment QR code as an SVG data URI, safe to put in an <img src>."""
    return segno.make(provisioning_uri(staff), error="m").svg_data_uri(scale=5, border=2)


def enrolment(staff_id: int) -> dict | None:
    """What the code step shows the member who passed the password step; QR and secret until enrolled."""
    staff = db.session.get(Staff, staff_id)
    if staff is None or not staff.active:
        return None
    if is_enrolled(staff):
        return {"email": staff.email, "enrolling": False}
    secret = staff.totp_secret
    return {
        "email": staff.email,
        "enrolling": True,
        "qr": qr_data_uri(staff),
        "secret": " ".join(secret[i:i + 4] for i in range(0, len(secret), 4)),
        "uri": provisioning_uri(staff),
    }


def create_staff(email: str, role: str, password: str, actor: Actor) -> Staff:
    """Validate and create a staff member with a fresh TOTP secret (the caller is already trusted)."""
    email = (email or "").strip()
    problems = {}
    if not EMAIL.match(email) or len(email) > 254:
        problems["email"] = "Enter an email address like name@example.org."
    elif auth.find_staff(email) is not None:
        problems["email"] = "A staff member with this email already exists."
    if role not in STAFF_ROLES:
        problems["role"] = "Choose one of: " + ", ".join(STAFF_ROLES) + "."
    problem = password_problem(password or "")
    if problem:
        problems["password"] = problem
    if problems:
        raise Invalid("The staff member could not be added; see the fields.", fields=problems)
    staff = Staff(email=email, role=role, password_hash=hash_password(password),
                  totp_secret=pyotp.random_base32(), active=True)
    db.session.add(staff)
    db.session.flush()
    audit.record(actor, "staff.add", "staff", staff.id, None, _state(staff))
    db.session.commit()
    return staff


def add_staff(principal, actor: Actor, email: str, role: str, password: str) -> Staff:
    """An admin adds a staff member from the staff page."""
    policy.authorize(principal, "staff.manage")
    return create_staff(email, role, password, actor)


def list_staff(principal) -> list[Staff]:
    """Every staff member, by email (admins)."""
    policy.authorize(principal, "staff.manage")
    return list(db.session.scalars(select(Staff).order_by(Staff.email)))


def set_active(principal, actor: Actor, staff_id: int, active: bool) -> Staff:
    """Enable or disable a staff member; disabling also revokes their API tokens."""
    policy.authorize(principal, "staff.manage")
    staff = _get(staff_id)
    if staff.id == principal.id and not active:
        raise Forbidden("You cannot disable your own account; ask another admin.")
    before = _state(staff)
    staff.active = bool(active)
    if not active:
        for token in db.session.scalars(select(ApiToken).where(
                ApiToken.principal_kind == "staff", ApiToken.principal_id == staff.id, ApiToken.revoked.is_(False))):
            token.revoked = True
    db.session.flush()
    audit.record(actor, "staff.enable" if active else "staff.disable", "staff", staff.id, before, _state(staff))
    db.session.commit()
    return staff


def reset_totp(principal, actor: Actor, staff_id: int) -> Staff:
    """Give a staff member a new TOTP secret; they enrol again at their next login."""
    policy.authorize(principal, "staff.manage")
    staff = _get(staff_id)
    before = _state(staff)
    staff.totp_secret = pyotp.random_base32()
    staff.totp_last_step = None
    db.session.flush()
    audit.record(actor, "staff.reset_totp", "staff", staff.id, before, _state(staff))
    db.session.commit()
    return staff


def check_password(email: str, password: str, actor: Actor) -> Staff | None:
    """First login step: the active staff member for email and password, or None (failure audited)."""
    staff = auth.find_staff(email or "")
    ok = verify_password(staff.password_hash if staff else None, password or "")
    if not ok or not staff.active:
        audit.record(actor, "staff.login_failed", "staff", staff.id if staff else None, None,
                     {"email": (email or "")[:254], "step": "password"})
        db.session.commit()
        return None
    return staff


def check_code(staff_id: int, code: str, actor: Actor) -> Staff | None:
    """Second login step: a fresh TOTP code for the member who passed the password step, or None."""
    staff = db.session.get(Staff, staff_id)
    if staff is None or not staff.active:
        return None
    enrolling = not is_enrolled(staff)
    if not auth.check_totp(staff, code):
        audit.record(actor, "staff.login_failed", "staff", staff.id, None, {"email": staff.email, "step": "totp"})
        db.session.commit()
        return None
    login_actor = Actor("staff", staff.id, staff.email, actor.ip, actor.user_agent)
    if enrolling:
        audit.record(login_actor, "staff.enrol_totp", "staff", staff.id, None, _state(staff))
    audit.record(login_actor, "staff.login", "staff", staff.id)
    db.session.commit()  # keeps the accepted time step, so the code cannot be replayed
    return staff


def demo_code(email: str) -> str:
    """The TOTP code the server will accept next for `email`; demo and test modes only."""
    if runtime.settings().mode not in ("demo", "test"):
        raise Forbidden("Printing TOTP codes is only possible in demo and test modes.")
    staff = auth.find_staff(email or "")
    if staff is None:
        raise NotFound(f"No staff member with email {email!r}.")
    return next_code(staff)


def next_code(staff: Staff) -> str:
    """The earliest code within the accepted clock window that has not been used yet."""
    totp = pyotp.TOTP(staff.totp_secret)
    now_step = int(time.time()) // totp.interval
    step = now_step if staff.totp_last_step is None else max(now_step, staff.totp_last_step + 1)
    if step > now_step + 1:
        raise Invalid("Two codes were already used in this half-minute; wait 30 seconds.", code="otp_exhausted")
    return totp.at(step * totp.interval)


def _get(staff_id: int) -> Staff:
    staff = db.session.get(Staff, staff_id)
    if staff is None:
        raise NotFound("No such staff member.")
    return staff


def _state(staff: Staff) -> dict:
    # Never the password hash or the TOTP secret: the audit log is readable by every reviewer.
    return {"email": staff.email, "role": staff.role, "active": staff.active, "enrolled": is_enrolled(staff)}
