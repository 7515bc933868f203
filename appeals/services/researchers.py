"""Licensed researcher access to the unhashed variant: applications, decisions, expiry, revocation.

Access itself is checked by `policy.researcher_has_access` at every request, so an
expired or revoked grant stops working at once, whatever links were issued.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select

from appeals import db, runtime
from appeals.db import utcnow
from appeals.i18n import gettext as _
from appeals.models import Researcher
from appeals.services import audit, auth, dispatch, notify, policy
from appeals.services.audit import Actor
from appeals.services.accounts import email_problem
from appeals.services.errors import Conflict, Invalid, NotFound, Unauthorized
from appeals.services.passwords import hash_password, password_problem

_LIMITS = {"name": 200, "institution": 200, "email": 254, "purpose": 5000}


def access_status(researcher: Researcher) -> str:
    """pending, approved, expired, rejected or revoked: what the researcher's grant is now."""
    if researcher.status == "approved" and not policy.researcher_has_access(researcher):
        return "expired"
    return researcher.status


def _snapshot(researcher: Researcher) -> dict:
    return {
        "status": researcher.status,
        "expires_at": researcher.expires_at.isoformat() if researcher.expires_at else None,
        "decided_by_id": researcher.decided_by_id,
    }


def apply(name, institution, email, purpose, password, accept_licence, ip: str | None = None,
          user_agent: str | None = None) -> Researcher | None:
    """Record an application (status pending) and acknowledge it by email.

    Returns None when the email already has an application: that address is told by
    email instead, so the form never reveals who has applied.
    """
    values = {k: (v.strip() if isinstance(v, str) else "") for k, v in
              {"name": name, "institution": institution, "email": email, "purpose": purpose}.items()}
    problems = {k: _("Required.") for k, v in values.items() if not v}
    problems.update({k: _("At most %(max)s characters.", max=n) for k, n in _LIMITS.items() if len(values[k]) > n})
    if "email" not in problems and email_problem(values["email"]):
        problems["email"] = email_problem(values["email"])
    weak = password_problem(password) if isinstance(password, str) else _("Required.")
    if weak:
        problems["password"] = weak
    if accept_licence is not True:
        problems["accept_licence"] = _("You must accept the data licence to apply.")
    if problems:
        raise Invalid(_("Please correct the form."), fields=problems)

    # issue 13: the same work whether or not the address is known (the hash is the slow part), so the
    # time taken does not tell who has applied.
    password_hash = hash_password(password)
    existing = db.session.scalar(select(Researcher).where(func.lower(Researcher.email) == values["email"].lower()))
    if existing is not None:
        notify.enqueue(
            existing.email, _("Your researcher application"),
            _("Hello,\n\nSomeone (perhaps you) applied again for researcher access with this address. "
              "You already have an application or grant with us; log in to see where it stands:\n"
              "  %(url)s\n\nIf this was not you, you can ignore this message.",
              url=f"{runtime.settings().public_url}/researchers/login"),
            "researcher",
        )
        db.session.commit()
        dispatch.mail()
        return None

    researcher = Researcher(
        name=values["name"], institution=values["institution"], email=values["email"], purpose=values["purpose"],
        password_hash=password_hash, licence_accepted_at=utcnow(), status="pending",
    )
    db.session.add(researcher)
    db.session.flush()
    audit.record(Actor("researcher", researcher.id, researcher.email, ip, user_agent), "researcher.apply",
                 "researcher", researcher.id, None, _snapshot(researcher))
    notify.enqueue(
        researcher.email, _("We received your researcher application"),
        _("Hello %(name)s,\n\nThank you for applying for access to the unhashed datasets. "
          "An administrator will review your application; you will get an email with the decision.",
          name=researcher.name),
        "researcher",
    )
    db.session.commit()
    dispatch.mail()
    return researcher


def authenticate(email, password) -> Researcher:
    """The researcher for an email and password (any status), or Unauthorized."""
    researcher = None
    if isinstance(email, str) and isinstance(password, str) and email and password:
        researcher = auth.authenticate_researcher(email, password)
    if researcher is None:
        raise Unauthorized(_("That email and password do not match an application."), code="invalid_credentials")
    return researcher


def applications(principal) -> list[Researcher]:
    """Every application and grant, pending first, for an admin."""
    policy.authorize(principal, "researcher.manage")
    order = {"pending": 0, "approved": 1, "revoked": 2, "rejected": 3}
    rows = db.session.scalars(select(Researcher).order_by(Researcher.created_at.desc())).all()
    return sorted(rows, key=lambda r: order.get(r.status, 9))


def _load(researcher_id: int) -> Researcher:
    researcher = db.session.get(Researcher, researcher_id)
    if researcher is None:
        raise NotFound("No such researcher.")
    return researcher


def approve(principal, researcher_id: int, expires_on: date | None, actor: Actor) -> Researcher:
    """Grant access (optionally until the end of `expires_on`); also renews or reinstates a grant."""
    policy.authorize(principal, "researcher.manage")
    researcher = _load(researcher_id)
    if expires_on is not None and expires_on < utcnow().date():
        raise Invalid("The expiry date is in the past.", fields={"expires_on": "Choose today or a later date."})
    before = _snapshot(researcher)
    researcher.status = "approved"
    # End of the chosen day, UTC: "until 31 March" includes 31 March.
    researcher.expires_at = datetime.combine(expires_on + timedelta(days=1), time()) if expires_on else None
    _decided(researcher, principal, None)
    audit.record(actor, "researcher.approve", "researcher", researcher.id, before, _snapshot(researcher))
    until = f" until {expires_on:%Y-%m-%d}" if expires_on else ""
    _tell(researcher, "Your researcher access was approved",
          f"Your application was approved: you may download the unhashed datasets{until}.\n"
          f"Log in to download: {runtime.settings().public_url}/researchers/login")
    return researcher


def reject(principal, researcher_id: int, reason, actor: Actor) -> Researcher:
    """Refuse a pending application; the reason is required and sent to the applicant."""
    return _close(principal, researcher_id, reason, actor, "pending", "rejected",
                  "Your researcher application was not approved")


def revoke(principal, researcher_id: int, reason, actor: Actor) -> Researcher:
    """End an approved grant now; the reason is required and sent to the researcher."""
    return _close(principal, researcher_id, reason, actor, "approved", "revoked", "Your researcher access was revoked")


def _close(principal, researcher_id, reason, actor, from_status, to_status, subject) -> Researcher:
    policy.authorize(principal, "researcher.manage")
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise Invalid("Give a reason: it is sent to the researcher.", fields={"reason": "Required."})
    if len(reason) > 5000:
        raise Invalid("The reason is too long.", fields={"reason": "At most 5000 characters."})
    researcher = _load(researcher_id)
    if researcher.status != from_status:
        raise Conflict(f"This application is {researcher.status}; it cannot be {to_status}.")
    before = _snapshot(researcher)
    researcher.status = to_status
    _decided(researcher, principal, reason)
    audit.record(actor, f"researcher.{'reject' if to_status == 'rejected' else 'revoke'}", "researcher",
                 researcher.id, before, {**_snapshot(researcher), "reason": reason})
    _tell(researcher, subject, f"Reason given:\n{reason}")
    return researcher


def _decided(researcher: Researcher, principal, reason: str | None) -> None:
    researcher.decided_by_id = principal.id
    researcher.decided_at = utcnow()
    researcher.decision_reason = reason


def _tell(researcher: Researcher, subject: str, text: str) -> None:
    notify.enqueue(researcher.email, subject, f"Hello {researcher.name},\n\n{text}\n", "researcher")
    db.session.commit()
    dispatch.mail()
