"""Credentials: who a login or a bearer token belongs to, single-use TOTP steps, token issue and
revocation, the server-side validity of web sessions, and the subject every login limit is keyed on."""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import and_, bindparam, func, or_, select, update

from appeals import db
from appeals.db import utcnow
from appeals.i18n import gettext as _
from appeals.models import Account, ApiToken, Researcher, Staff
from appeals.services import audit
from appeals.services.audit import Actor
from appeals.services.errors import Invalid, Unauthorized
from appeals.services.passwords import verify_password

TOKEN_LIFETIME = timedelta(hours=12)
MAX_IDENTITY = 254


# --- the login identity: normalised once, here --------------------------------------------------


def normalise_identity(identifier) -> str:
    """The one canonical form of a login name: NFKC, trimmed, leading '@'s dropped, case-folded.

    Every lookup and every login limit goes through this, so `@@NewsGop51`, `newsgop51`
    and a full-width spelling all name the same account and share the same limits.
    """
    if not isinstance(identifier, str):
        return ""
    ident = unicodedata.normalize("NFKC", identifier).strip().lstrip("@").strip().casefold()[:MAX_IDENTITY]
    try:
        ident.encode("utf-8")  # a lone surrogate names nobody
    except UnicodeEncodeError:
        return ""
    return ident if "\x00" not in ident else ""


def find_account(identifier: str) -> Account | None:
    """The account whose screen name (any letter case) or email is `identifier`."""
    ident = normalise_identity(identifier)
    if not ident:
        return None
    return db.session.scalar(
        select(Account).where(or_(Account.screen_name_lower == ident, func.lower(Account.email) == ident))
    )


def find_staff(email: str) -> Staff | None:
    """The staff member with this email (any letter case)."""
    ident = normalise_identity(email)
    return db.session.scalar(select(Staff).where(func.lower(Staff.email) == ident)) if ident else None


def find_researcher(email: str) -> Researcher | None:
    """The researcher with this email (any letter case)."""
    ident = normalise_identity(email)
    return db.session.scalar(select(Researcher).where(func.lower(Researcher.email) == ident)) if ident else None


LOGIN_KINDS = {"account": find_account, "staff": find_staff, "researcher": find_researcher}


def login_subject(kind: str, identifier) -> str:
    """What a login limit counts against: the principal the name resolves to, or the normalised name."""
    ident = normalise_identity(identifier)
    finder = LOGIN_KINDS.get(kind)
    principal = finder(ident) if finder and ident else None
    if principal is not None:
        return f"{kind}:{principal.id}"
    return f"{kind}-name:{hashlib.sha256(ident.encode('utf-8')).hexdigest()[:32]}"


# --- passwords and TOTP -------------------------------------------------------------------------


def authenticate_account(identifier: str, password: str) -> Account | None:
    """The account for a screen name or email and password, or None."""
    account = find_account(identifier)
    ok = verify_password(account.password_hash if account else None, password)
    return account if ok else None


def normalise_code(code) -> str | None:
    """A TOTP code as six ASCII digits (full-width digits and spaces allowed), or None."""
    if not isinstance(code, str):
        return None
    code = unicodedata.normalize("NFKC", code).replace(" ", "").strip()
    if len(code) != 6 or not (code.isascii() and code.isdigit()):
        return None
    return code


def matching_step(secret: str, code, at: float | None = None) -> int | None:
    """The time step (current, or one either side for clock drift) whose code is `code`, or None."""
    code = normalise_code(code)
    if code is None:
        return None
    totp = pyotp.TOTP(secret)
    now_step = int(time.time() if at is None else at) // totp.interval
    for step in (now_step - 1, now_step, now_step + 1):
        if secrets.compare_digest(totp.at(step * totp.interval), code):
            return step
    return None


def check_totp(staff: Staff, code) -> bool:
    """Accept a current TOTP code once, with ONE conditional UPDATE (the caller commits).

    Concurrent requests with the same code race on that UPDATE: the database lets exactly
    one of them move `totp_last_step` forward; every other one sees rowcount 0.
    """
    step = matching_step(staff.totp_secret, code)
    if step is None:
        return False
    result = db.session.execute(
        update(Staff)
        .where(Staff.id == staff.id, Staff.totp_secret == staff.totp_secret,
               or_(Staff.totp_last_step.is_(None), Staff.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    db.session.expire(staff, ["totp_last_step"])
    return True


def authenticate_staff(email: str, password: str, otp) -> Staff | None:
    """The active staff member for email, password and a fresh TOTP code, or None (caller commits)."""
    staff = find_staff(email)
    if not verify_password(staff.password_hash if staff else None, password):
        return None
    if not staff.active or not check_totp(staff, otp):
        return None
    return staff


def authenticate_researcher(email: str, password: str) -> Researcher | None:
    """The researcher for an email and password, or None (access is checked by the policy)."""
    researcher = find_researcher(email)
    ok = verify_password(researcher.password_hash if researcher else None, password)
    return researcher if ok else None


@dataclass(frozen=True)
class StaffLogin:
    """Where a staff login stands: `complete` once the code was accepted."""

    staff: Staff
    complete: bool
    enrolled_now: bool = False


def staff_login(actor: Actor, *, email=None, password=None, code=None, pending_id: int | None = None) -> StaffLogin:
    """THE staff login, for the reviewer pages (two requests) and the API (one call).

    Step one checks email and password; without a code it returns an incomplete login
    (the pages then ask for the code with `pending_id`). Step two checks a fresh TOTP
    code, single-use. Every failure is audited and raises Unauthorized.
    """
    failed = Unauthorized(_("Those credentials are not valid."), code="invalid_credentials")
    if pending_id is None:
        staff = find_staff(email) if isinstance(email, str) else None
        ok = verify_password(staff.password_hash if staff else None, password if isinstance(password, str) else "")
        if not ok or not staff.active:
            audit.record(actor, "staff.login_failed", "staff", staff.id if staff else None, None,
                         {"email": normalise_identity(email)[:254], "step": "password"})
            db.session.commit()
            raise failed
        if code is None:
            return StaffLogin(staff, complete=False)
    else:
        staff = db.session.get(Staff, pending_id)
        if staff is None or not staff.active:
            raise failed
    enrolling = staff.totp_last_step is None
    if not check_totp(staff, code):
        db.session.commit()  # a step consumed by a racing request stays consumed
        audit.record(actor, "staff.login_failed", "staff", staff.id, None, {"email": staff.email, "step": "totp"})
        db.session.commit()
        raise failed
    login_actor = Actor("staff", staff.id, staff.email, actor.ip, actor.user_agent)
    if enrolling:
        staff.enrolled_at = utcnow()
        audit.record(login_actor, "staff.enrol_totp", "staff", staff.id, None, {"email": staff.email})
    audit.record(login_actor, "staff.login", "staff", staff.id)
    db.session.commit()  # keeps the accepted time step, so the code cannot be replayed
    return StaffLogin(staff, complete=True, enrolled_now=enrolling)


# --- bearer tokens ------------------------------------------------------------------------------


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


def create_token(username, password, otp, actor: Actor) -> tuple[str, int]:
    """POST /tokens: check the credentials (staff add `otp`), audit, and issue a token.

    Returns (token, lifetime in seconds); raises Invalid or Unauthorized. A TOTP step
    consumed by a failing attempt stays consumed.
    """
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise Invalid(_("username and password are required."),
                      fields={"username": _("Required: a string."), "password": _("Required: a string.")})
    if otp is not None and (isinstance(otp, bool) or not isinstance(otp, (str, int))):
        raise Invalid(_("otp must be a string of 6 digits."), fields={"otp": _("A string of 6 digits.")})
    if otp is not None:
        # The same two steps as the reviewer pages, in one call.
        principal = staff_login(actor, email=username, password=password, code=str(otp)).staff
    else:
        principal = authenticate_account(username, password)
        if principal is None:
            audit.record(Actor(actor.kind, None, normalise_identity(username)[:254] or "?", actor.ip,
                               actor.user_agent), "api_token.create_failed", "account", None)
            db.session.commit()
            raise Unauthorized(_("Those credentials are not valid."), code="invalid_credentials")
    audit.record(Actor(principal.kind, principal.id, getattr(principal, "email", None)
                       or getattr(principal, "screen_name", str(principal.id)), actor.ip, actor.user_agent),
                 "api_token.create", principal.kind, principal.id)
    token = issue_token(principal)  # commits the audit entry and the consumed TOTP step with it
    return token, int(TOKEN_LIFETIME.total_seconds())


def revoke_token(token: str, actor: Actor) -> bool:
    """Revoke one bearer token (its holder logs out of the API); True when it was live."""
    result = db.session.execute(
        update(ApiToken).where(ApiToken.token_hash == _digest(token), ApiToken.revoked.is_(False))
        .values(revoked=True).execution_options(synchronize_session=False)
    )
    if result.rowcount:
        audit.record(actor, "api_token.revoke", actor.kind, actor.id)
    db.session.commit()
    return bool(result.rowcount)


def revoke_all(principal) -> None:
    """End every web session and API token of `principal` (no commit: part of the caller's change)."""
    principal.session_generation = (principal.session_generation or 0) + 1
    db.session.execute(
        update(ApiToken).where(ApiToken.principal_kind == principal.kind, ApiToken.principal_id == principal.id,
                               ApiToken.revoked.is_(False))
        .values(revoked=True).execution_options(synchronize_session=False)
    )


PRINCIPAL_MODELS = {"account": Account, "staff": Staff, "researcher": Researcher}


def load_principal(kind: str, principal_id: int):
    """The Account, Staff or Researcher for a (kind, id) pair, or None."""
    model = PRINCIPAL_MODELS.get(kind)
    return db.session.get(model, principal_id) if model else None


@functools.lru_cache(maxsize=1)
def _token_principal_statement():
    # Built once: ONE indexed statement (the token_hash unique index, then each principal's primary key)
    # that also applies the token's own rules (not revoked, not expired); values are bound per request.
    statement = select(*PRINCIPAL_MODELS.values()).select_from(ApiToken)
    for kind, model in PRINCIPAL_MODELS.items():
        statement = statement.outerjoin(model, and_(ApiToken.principal_kind == kind,
                                                    model.id == ApiToken.principal_id))
    return statement.where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked.is_(False),
                           ApiToken.expires_at > bindparam("now"))


def resolve_token(token: str):
    """The principal a live bearer token belongs to, or None (one statement; nothing is written).

    A token is live while it is not revoked, not expired, and its principal exists and is
    active (a disabled staff member's tokens stop working at once). Tokens record no
    "last used" time, so this check never writes.
    """
    if not token or len(token) > 200:
        return None
    row = db.session.execute(_token_principal_statement(),
                             {"token_hash": _digest(token), "now": utcnow()}).first()
    principal = next((entity for entity in row if entity is not None), None) if row is not None else None
    if principal is None or not principal.is_active:
        return None
    return principal


# --- web sessions, revocable on the server -------------------------------------------------------


def session_stamp(principal, now: float | None = None) -> dict:
    """What a new web session records about its principal: generation and login time."""
    now = time.time() if now is None else now
    return {"gen": principal.session_generation or 0, "login_at": now, "seen_at": now}


def session_is_valid(principal, stamp, idle: timedelta, max_age: timedelta, now: float | None = None) -> bool:
    """True while a web session's stamp matches the principal's generation and neither timeout passed."""
    if principal is None or not isinstance(stamp, dict) or not principal.is_active:
        return False
    now = time.time() if now is None else now
    try:
        gen, login_at, seen_at = int(stamp["gen"]), float(stamp["login_at"]), float(stamp["seen_at"])
    except (KeyError, TypeError, ValueError):
        return False
    if gen != (principal.session_generation or 0):
        return False
    return now - seen_at <= idle.total_seconds() and now - login_at <= max_age.total_seconds()


def end_sessions(principal, actor: Actor) -> None:
    """Logout: every web session of `principal` ends on the server, not only this cookie."""
    principal = load_principal(principal.kind, principal.id)
    if principal is None:
        return
    principal.session_generation = (principal.session_generation or 0) + 1
    audit.record(actor, "session.logout", principal.kind, principal.id)
    db.session.commit()


def enrolled_recently(staff: Staff, now: datetime | None = None, days: int = 7) -> bool:
    """True for staff who enrolled (or re-enrolled) an authenticator in the last `days` days."""
    since = staff.enrolled_at or staff.created_at
    return since is not None and (now or utcnow()) - since < timedelta(days=days)
