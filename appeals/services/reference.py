"""Reason codes and message templates: lookups for decisions, admin management, demo defaults."""

from __future__ import annotations

import re

from sqlalchemy import select

from appeals import db
from appeals.models import Appeal, MessageTemplate, ReasonCode
from appeals.services import audit, policy
from appeals.services.audit import Actor
from appeals.services.errors import Invalid, NotFound

# `{name}`: a placeholder still waiting for a value. Any braces count, so nothing half-filled slips out.
PLACEHOLDER = re.compile(r"\{[^{}\n]{0,64}\}")
CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
APPLIES_TO = ("approve", "deny", "any")

DEFAULT_REASON_CODES = (
    ("authentic_account", "The account is authentic and was included in error", "approve"),
    ("compromised_verified", "The account was compromised during the period in question; verified", "approve"),
    ("evidence_insufficient", "The evidence provided does not support the appeal", "deny"),
    ("correctly_included", "The account's inclusion is consistent with the platform's findings", "deny"),
    ("duplicate_appeal", "This appeal repeats an earlier one without new information", "deny"),
)

DEFAULT_TEMPLATES = (
    (
        "Approval: included in error",
        "We reviewed your appeal about @{screen_name} and the published data. We found that the account was "
        "included in error. The datasets listed below will be corrected once a second reviewer confirms "
        "this decision: {datasets}.",
    ),
    (
        "Denial: evidence insufficient",
        "We reviewed your appeal about @{screen_name} against the published data for {datasets}. "
        "The information provided does not show that the account was included in error: {explanation}",
    ),
    (
        "Request: compromise dates",
        "To review your appeal about @{screen_name} we need to know when you lost control of the account "
        "and when you regained it, and any evidence of that (for example the platform's security emails). "
        "{question}",
    ),
)


def placeholders(text: str) -> list[str]:
    """The placeholders still present in `text`, in order, e.g. ['{reason}']."""
    return PLACEHOLDER.findall(text or "")


def require_filled(text: str, field: str) -> None:
    """Refuse text that still contains a template placeholder."""
    left = placeholders(text)
    if left:
        raise Invalid(
            "Fill in every placeholder before sending: " + ", ".join(dict.fromkeys(left)) + ".",
            code="unfilled_placeholders",
            fields={field: "Still contains " + ", ".join(dict.fromkeys(left))},
        )


def fill(body: str, appeal: Appeal) -> str:
    """A template's text with what the appeal already knows filled in; the rest stays for the reviewer."""
    known = {
        "screen_name": appeal.account.screen_name if appeal.account else "",
        "appeal_id": str(appeal.id),
        "datasets": ", ".join(d.dataset for d in appeal.datasets) or "no published dataset",
    }
    return PLACEHOLDER.sub(lambda m: known.get(m.group(0)[1:-1].strip(), m.group(0)), body)


def reason_codes(active_only: bool = True) -> list[ReasonCode]:
    """Reason codes ordered by code."""
    query = select(ReasonCode).order_by(ReasonCode.code)
    if active_only:
        query = query.where(ReasonCode.active.is_(True))
    return list(db.session.scalars(query))


def templates(active_only: bool = True) -> list[MessageTemplate]:
    """Message templates ordered by name."""
    query = select(MessageTemplate).order_by(MessageTemplate.name)
    if active_only:
        query = query.where(MessageTemplate.active.is_(True))
    return list(db.session.scalars(query))


def usable_reason_code(code: str | None, decision: str) -> ReasonCode | None:
    """The active reason code `code` usable for `decision` (approve|deny), or None when not given."""
    if not code:
        return None
    row = db.session.scalar(select(ReasonCode).where(ReasonCode.code == code))
    if row is None or not row.active or row.applies_to not in (decision, "any"):
        raise Invalid(
            f"{code!r} is not an active reason code for a decision to {decision}.",
            code="bad_reason_code",
            fields={"reason_code": "Choose one of the listed reason codes."},
        )
    return row


def listing(principal) -> dict:
    """Active reason codes (with what decision each applies to) and active templates, for any staff member."""
    policy.authorize(principal, "reference.view")
    return {
        "reason_codes": [{"code": r.code, "label": r.label, "applies_to": r.applies_to} for r in reason_codes()],
        "templates": [{"id": t.id, "name": t.name, "body": t.body, "placeholders": placeholders(t.body)}
                      for t in templates()],
    }


def manage_view(principal) -> dict:
    """Every reason code and template, active or not, for the admins' page."""
    policy.authorize(principal, "reference.manage")
    return {"codes": reason_codes(active_only=False), "templates": templates(active_only=False)}


def save_reason_code(principal, actor: Actor, code: str, label: str, applies_to: str, active: bool) -> ReasonCode:
    """Create or update a reason code (admins); codes are never deleted, only deactivated."""
    policy.authorize(principal, "reference.manage")
    code, label = (code or "").strip(), (label or "").strip()
    problems = {}
    if not CODE_PATTERN.match(code):
        problems["code"] = "Lower-case letters, digits and underscores, starting with a letter (2 to 64)."
    if not label or len(label) > 200:
        problems["label"] = "A label of 1 to 200 characters is required."
    if applies_to not in APPLIES_TO:
        problems["applies_to"] = "Choose approve, deny or any."
    if problems:
        raise Invalid("The reason code has problems; see the fields.", fields=problems)
    row = db.session.scalar(select(ReasonCode).where(ReasonCode.code == code))
    before = _code_state(row) if row else None
    if row is None:
        row = ReasonCode(code=code)
        db.session.add(row)
    row.label, row.applies_to, row.active = label, applies_to, bool(active)
    db.session.flush()
    audit.record(actor, "reason_code.save", "reason_code", row.code, before, _code_state(row))
    db.session.commit()
    return row


def save_template(principal, actor: Actor, name: str, body: str, active: bool, template_id: int | None = None
                  ) -> MessageTemplate:
    """Create (no id) or update a message template (admins)."""
    policy.authorize(principal, "reference.manage")
    name, body = (name or "").strip(), (body or "").strip()
    problems = {}
    if not name or len(name) > 100:
        problems["name"] = "A name of 1 to 100 characters is required."
    if not body or len(body) > 10000:
        problems["body"] = "A text of 1 to 10,000 characters is required."
    clash = db.session.scalar(select(MessageTemplate).where(MessageTemplate.name == name))
    if clash is not None and clash.id != template_id:
        problems["name"] = "Another template already has this name."
    if problems:
        raise Invalid("The template has problems; see the fields.", fields=problems)
    if template_id is None:
        row, before = MessageTemplate(), None
        db.session.add(row)
    else:
        row = db.session.get(MessageTemplate, template_id)
        if row is None:
            raise NotFound("No such template.")
        before = _template_state(row)
    row.name, row.body, row.active = name, body, bool(active)
    db.session.flush()
    audit.record(actor, "template.save", "template", row.id, before, _template_state(row))
    db.session.commit()
    return row


def seed_defaults() -> dict:
    """Create the default reason codes and templates that are missing; returns how many were added."""
    added = {"reason_codes": 0, "templates": 0}
    existing_codes = set(db.session.scalars(select(ReasonCode.code)))
    for code, label, applies_to in DEFAULT_REASON_CODES:
        if code not in existing_codes:
            db.session.add(ReasonCode(code=code, label=label, applies_to=applies_to, active=True))
            added["reason_codes"] += 1
    existing_names = set(db.session.scalars(select(MessageTemplate.name)))
    for name, body in DEFAULT_TEMPLATES:
        if name not in existing_names:
            db.session.add(MessageTemplate(name=name, body=body, active=True))
            added["templates"] += 1
    db.session.commit()
    return added


def _code_state(row: ReasonCode) -> dict:
    return {"code": row.code, "label": row.label, "applies_to": row.applies_to, "active": row.active}


def _template_state(row: MessageTemplate) -> dict:
    return {"name": row.name, "body": row.body, "active": row.active}
