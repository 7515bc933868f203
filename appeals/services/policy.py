"""Who may do what: the single authorization policy used by pages, API and CLI alike.

A principal is an Account (appellant), a Staff member, a Researcher, or None
(anonymous). Services call `authorize` before acting; views may call `can` to
decide what to show, but hiding a button is never the protection.
"""

from __future__ import annotations

from datetime import timedelta

from appeals import runtime
from appeals.db import utcnow
from appeals.i18n import gettext as _
from appeals.models import Account, Appeal, Researcher, Staff
from appeals.services.errors import Forbidden, NotFound, Unauthorized

OWNER_ACTIONS = frozenset({"footprint.view", "appeal.file", "appeal.view_own", "appeal.reply", "appeal.withdraw"})

# Staff action -> minimum role.
STAFF_ACTIONS: dict[str, str] = {
    "queue.view": "reviewer",
    "appeal.view": "reviewer",
    "appeal.claim": "reviewer",
    "appeal.release": "reviewer",
    "appeal.decide": "reviewer",
    "appeal.note": "reviewer",
    "appeal.message": "reviewer",
    "appeal.confirm": "senior",
    "appeal.send_back": "senior",
    "claim.release_any": "senior",
    "audit.view": "reviewer",
    "dashboard.view": "reviewer",
    "staff.manage": "admin",
    "reference.manage": "admin",
    "reference.view": "reviewer",  # issue 14: GET /api/v1/reference
    "correction.retry": "admin",
    "researcher.manage": "admin",
    # issue 11: the ledger of standing decisions
    "ledger.view": "admin",
    "decision.revoke": "admin",
}


def claim_is_live(appeal: Appeal) -> bool:
    """True while the appeal's claim has been touched within the configured idle time."""
    if appeal.assigned_to_id is None or appeal.claim_touched_at is None:
        return False
    idle = timedelta(minutes=runtime.settings().claim_idle_minutes)
    return utcnow() - appeal.claim_touched_at < idle


def holds_claim(staff: Staff, appeal: Appeal) -> bool:
    """True when `staff` holds a live claim on `appeal`."""
    return appeal.assigned_to_id == staff.id and claim_is_live(appeal)


def can(principal, action: str, appeal: Appeal | None = None) -> bool:
    """True when `principal` may do `action` (on `appeal`, where one is concerned)."""
    try:
        authorize(principal, action, appeal)
    except (Forbidden, NotFound, Unauthorized):
        return False
    return True


def authorize(principal, action: str, appeal: Appeal | None = None) -> None:
    """Raise unless `principal` may do `action`.

    Owners asking about an appeal that is not theirs get NotFound, never Forbidden:
    they must not learn that it exists.
    """
    if principal is None or getattr(principal, "is_anonymous", False):
        raise Unauthorized(_("Please log in."))

    if action in OWNER_ACTIONS:
        if not isinstance(principal, Account):
            raise Forbidden(_("Only account owners can do this."))
        if appeal is not None and appeal.account_id != principal.id:
            raise NotFound(_("No such appeal."))
        return

    if action == "dataset.download_unhashed":
        if not (isinstance(principal, Researcher) and researcher_has_access(principal)):
            raise Forbidden(_("Unhashed data needs an approved, current researcher grant."))
        return

    minimum = STAFF_ACTIONS.get(action)
    if minimum is None:
        raise Forbidden(_("Unknown action %(action)r.", action=action))
    if not isinstance(principal, Staff) or not principal.has_role(minimum):
        raise Forbidden(_("Your role does not allow this."))
    if appeal is None:
        return

    if action == "appeal.claim" and is_escalated(appeal) and not principal.has_role("senior"):
        raise Forbidden("Escalated appeals are for senior reviewers.")
    if action in ("appeal.decide", "appeal.message"):
        if not holds_claim(principal, appeal):
            raise Forbidden("Claim this appeal before acting on it.")
        if is_escalated(appeal) and not principal.has_role("senior"):
            raise Forbidden("Escalated appeals are decided by senior reviewers.")
    if action == "appeal.release" and not (holds_claim(principal, appeal) or principal.has_role("senior")):
        raise Forbidden("Only the holder or a senior reviewer can release this claim.")
    if action in ("appeal.confirm", "appeal.send_back") and appeal.approved_by_id == principal.id:
        # Four eyes: the one who approved a change to published data never confirms it.
        raise Forbidden("The approver cannot confirm their own approval; another senior must.")


def is_escalated(appeal: Appeal) -> bool:
    """True for an appeal that is, or ever was, escalated: it stays with senior reviewers."""
    return appeal.status == "escalated" or bool(getattr(appeal, "senior_only", False))


def researcher_has_access(researcher: Researcher) -> bool:
    """True for an approved researcher whose grant has not expired or been revoked."""
    if researcher.status != "approved":
        return False
    return researcher.expires_at is None or researcher.expires_at > utcnow()
