"""Staff accounts: invitations (four eyes for senior and admin), enabling and disabling, TOTP enrolment."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from datetime import timedelta

import pyotp
import segno
from sqlalchemy import func, select, update

from appeals import db, runtime
from appeals.db import utcnow
from appeals.models import STAFF_ROLES, AuditEntry, Staff, StaffInvitation
from appeals.services import audit, auth, dispatch, notify, policy
from appeals.services.audit import Actor
from appeals.services.errors import Conflict, Forbidden, Invalid, NotFound
from appeals.services.passwords import hash_password, password_problem

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
    # Both ways: a disabled member's sessions and tokens end, and re-enabling revives none of them.
    auth.revoke_all(staff)
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
    auth.revoke_all(staff)  # whoever held the old authenticator is logged out everywhere
    db.session.flush()
    audit.record(actor, "staff.reset_totp", "staff", staff.id, before, _state(staff))
    db.session.commit()
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


# --- issue 13: invitations, and four eyes that one admin cannot defeat alone --------------------

INVITATION_HOURS = 72
NEW_STAFF_DAYS = 7
CONFIRMED_ROLES = ("senior", "admin")  # granting these needs a second admin whenever one exists


def _other_admins(principal) -> int:
    return db.session.scalar(select(func.count()).select_from(Staff).where(
        Staff.role == "admin", Staff.active.is_(True), Staff.id != principal.id)) or 0


def invite(principal, actor: Actor, email: str, role: str) -> StaffInvitation:
    """An admin invites a new member; the one-time link goes by email to them alone.

    The admin never sees the link, the password or the TOTP secret. A senior or admin
    invitation waits for another admin's confirmation whenever another active admin exists.
    """
    policy.authorize(principal, "staff.manage")
    email = (email or "").strip() if isinstance(email, str) else ""
    problems = {}
    if not EMAIL.match(email) or len(email) > 254:
        problems["email"] = "Enter an email address like name@example.org."
    elif auth.find_staff(email) is not None:
        problems["email"] = "A staff member with this email already exists."
    elif db.session.scalar(select(StaffInvitation.id).where(
            func.lower(StaffInvitation.email) == email.lower(),
            StaffInvitation.status.in_(("awaiting_confirmation", "sent")))) is not None:
        problems["email"] = "This address already has an open invitation."
    if role not in STAFF_ROLES:
        problems["role"] = "Choose one of: " + ", ".join(STAFF_ROLES) + "."
    if problems:
        raise Invalid("The invitation could not be sent; see the fields.", fields=problems)
    needs_second = role in CONFIRMED_ROLES and _other_admins(principal) > 0
    invitation = StaffInvitation(
        email=email, role=role, token_hash="pending:" + secrets.token_hex(16), totp_secret=pyotp.random_base32(),
        status="awaiting_confirmation" if needs_second else "sent", invited_by_id=principal.id,
    )
    db.session.add(invitation)
    db.session.flush()
    audit.record(actor, "staff.invite", "staff_invitation", invitation.id, None, _invitation_state(invitation))
    if not needs_second:
        _send_invitation(invitation)
    db.session.commit()
    dispatch.mail()
    return invitation


def confirm_invitation(principal, actor: Actor, invitation_id: int) -> StaffInvitation:
    """A second admin confirms a senior or admin invitation; only then is the link sent."""
    policy.authorize(principal, "staff.manage")
    invitation = _invitation(invitation_id)
    if invitation.status != "awaiting_confirmation":
        raise Conflict("This invitation is not waiting for a confirmation.", code="not_awaiting_confirmation")
    if invitation.invited_by_id == principal.id:
        raise Forbidden("Four eyes: another admin must confirm the role you granted.")
    before = _invitation_state(invitation)
    result = db.session.execute(
        update(StaffInvitation)
        .where(StaffInvitation.id == invitation.id, StaffInvitation.status == "awaiting_confirmation")
        .values(status="sent", confirmed_by_id=principal.id)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise Conflict("Someone else changed this invitation; reload the page.")
    db.session.refresh(invitation)
    _send_invitation(invitation)
    audit.record(actor, "staff.invite_confirm", "staff_invitation", invitation.id, before,
                 _invitation_state(invitation))
    db.session.commit()
    dispatch.mail()
    return invitation


def cancel_invitation(principal, actor: Actor, invitation_id: int) -> StaffInvitation:
    """An admin withdraws an invitation that has not been used."""
    policy.authorize(principal, "staff.manage")
    invitation = _invitation(invitation_id)
    if invitation.status not in ("awaiting_confirmation", "sent"):
        raise Conflict("This invitation can no longer be cancelled.")
    before = _invitation_state(invitation)
    invitation.status = "cancelled"
    audit.record(actor, "staff.invite_cancel", "staff_invitation", invitation.id, before,
                 _invitation_state(invitation))
    db.session.commit()
    return invitation


def open_invitations(principal) -> list[StaffInvitation]:
    """Invitations waiting for a confirmation or for the invitee (admins)."""
    policy.authorize(principal, "staff.manage")
    return list(db.session.scalars(select(StaffInvitation).where(
        StaffInvitation.status.in_(("awaiting_confirmation", "sent"))).order_by(StaffInvitation.created_at)))


def _send_invitation(invitation: StaffInvitation) -> None:
    token = secrets.token_urlsafe(32)
    invitation.token_hash = _token_hash(token)
    invitation.expires_at = utcnow() + timedelta(hours=INVITATION_HOURS)
    link = f"{runtime.settings().public_url}/review/invitations/{token}"
    notify.enqueue(
        invitation.email, "You are invited to the dataset appeals review team",
        f"Hello,\n\nYou are invited to join the review team as {invitation.role}. Open this link within "
        f"{INVITATION_HOURS} hours to choose your password and set up your authenticator app:\n  {link}\n\n"
        "The link works once. If you did not expect this message, ignore it.",
        "staff_invitation",
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def invitation_by_token(token) -> StaffInvitation | None:
    """The live invitation a link's token belongs to, or None (used, cancelled, expired or unknown)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    invitation = db.session.scalar(select(StaffInvitation).where(StaffInvitation.token_hash == _token_hash(token)))
    if invitation is None or invitation.status != "sent" or invitation.expires_at is None:
        return None
    return invitation if invitation.expires_at > utcnow() else None


def invitation_enrolment(token) -> dict | None:
    """What the invitation page shows its invitee: email, role, QR code and secret to enrol."""
    invitation = invitation_by_token(token)
    if invitation is None:
        return None
    totp = pyotp.TOTP(invitation.totp_secret)
    uri = totp.provisioning_uri(name=invitation.email, issuer_name=ISSUER)
    secret = invitation.totp_secret
    return {"email": invitation.email, "role": invitation.role, "uri": uri,
            "qr": segno.make(uri, error="m").svg_data_uri(scale=5, border=2),
            "secret": " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))}


def accept_invitation(token, password, code, actor: Actor) -> Staff:
    """The invitee sets their own password and proves their authenticator; the link is spent once."""
    invitation = invitation_by_token(token)
    if invitation is None:
        raise NotFound("This invitation link is not valid any more; ask an admin for a new one.")
    problems = {}
    problem = password_problem(password) if isinstance(password, str) else "Required."
    if problem:
        problems["password"] = problem
    step = auth.matching_step(invitation.totp_secret, code)
    if step is None:
        problems["code"] = "Enter the current 6-digit code from your authenticator app."
    if problems:
        raise Invalid("Please correct the form.", fields=problems)
    if auth.find_staff(invitation.email) is not None:
        raise Conflict("A staff member with this email already exists.")
    spent = db.session.execute(
        update(StaffInvitation)
        .where(StaffInvitation.id == invitation.id, StaffInvitation.status == "sent")
        .values(status="used", used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        db.session.rollback()
        raise NotFound("This invitation link is not valid any more; ask an admin for a new one.")
    now = utcnow()
    staff = Staff(email=invitation.email, role=invitation.role, password_hash=hash_password(password),
                  totp_secret=invitation.totp_secret, totp_last_step=step, active=True, enrolled_at=now)
    db.session.add(staff)
    db.session.flush()
    db.session.execute(update(StaffInvitation).where(StaffInvitation.id == invitation.id)
                       .values(staff_id=staff.id).execution_options(synchronize_session=False))
    member = Actor("staff", staff.id, staff.email, actor.ip, actor.user_agent)
    audit.record(member, "staff.join", "staff", staff.id, None,
                 {**_state(staff), "invitation_id": invitation.id, "invited_by_id": invitation.invited_by_id,
                  "confirmed_by_id": invitation.confirmed_by_id})
    db.session.commit()
    return staff


def flag_new_staff_confirmation(principal, appeal, actor: Actor) -> None:
    """Mark the pending `appeal.confirm` audit entry when its senior enrolled in the last 7 days."""
    if not (isinstance(principal, Staff) and auth.enrolled_recently(principal, days=NEW_STAFF_DAYS)):
        return
    for entry in list(db.session.new):
        if isinstance(entry, AuditEntry) and entry.action == "appeal.confirm" and entry.object_id == str(appeal.id):
            # A new dict: the flag belongs to the entry as written, which is never changed afterwards.
            entry.after = {**(entry.after or {}), "flag": "new_staff",
                           "confirmer_enrolled_at": (principal.enrolled_at or principal.created_at).isoformat()}


def new_staff_confirmations(principal, days: int = 30) -> list:
    """Confirmations flagged as by new staff in the last `days` days, newest first (for the dashboard)."""
    policy.authorize(principal, "dashboard.view")
    since = utcnow() - timedelta(days=days)
    entries = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "appeal.confirm", AuditEntry.created_at >= since)
        .order_by(AuditEntry.created_at.desc()).limit(500))
    return [e for e in entries if (e.after or {}).get("flag") == "new_staff"][:50]


def _invitation(invitation_id: int) -> StaffInvitation:
    invitation = db.session.get(StaffInvitation, invitation_id)
    if invitation is None:
        raise NotFound("No such invitation.")
    return invitation


def _invitation_state(invitation: StaffInvitation) -> dict:
    # Never the token or the TOTP secret.
    return {"email": invitation.email, "role": invitation.role, "status": invitation.status,
            "invited_by_id": invitation.invited_by_id, "confirmed_by_id": invitation.confirmed_by_id}
