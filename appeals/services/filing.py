"""The owner's side of an appeal: file it, follow it, reply to a request for information, withdraw it."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from appeals import db, runtime
from appeals import status as table
from appeals.db import utcnow
from appeals.models import OPEN_STATUSES, REASONS, Account, Appeal, AppealDataset, AppealEvent, Message, ReasonCode
from appeals.requests import TEXT_MAX, iso, parse_iso, text_problem  # noqa: F401 - pages read filing.TEXT_MAX
from appeals.services import appeals, dispatch, policy
from appeals.services.accounts import describe, email_problem
from appeals.services.audit import Actor
from appeals.services.errors import Conflict, Invalid, NotFound
from appeals.services.footprint import entries_for_user_id
from appeals.services.transactions import atomic

REASON_LABELS = {
    "included_in_error": "My account was included in error",
    "compromised": "My account was compromised (someone else controlled it) at the time",
    "other": "Another reason",
}


# --- reading ------------------------------------------------------------------------------


def _last_denial_at(account_id: int) -> datetime | None:
    # The timeline event is the one record every reviewer path writes when it denies.
    return db.session.scalar(
        select(func.max(AppealEvent.created_at))
        .join(Appeal, Appeal.id == AppealEvent.appeal_id)
        .where(Appeal.account_id == account_id, AppealEvent.status_to == "denied")
    )


def _eligibility(account: Account) -> dict:
    open_appeal = db.session.scalar(
        select(Appeal.id)
        .where(Appeal.account_id == account.id, Appeal.status.in_(OPEN_STATUSES))
        .order_by(Appeal.id.desc())
        .limit(1)
    )
    footprint = entries_for_user_id(account.user_id)
    cooldown_days = runtime.settings().reappeal_cooldown_days
    denied_at = _last_denial_at(account.id)
    cooldown_until = denied_at + timedelta(days=cooldown_days) if denied_at else None
    needs_new_information = cooldown_until is not None and utcnow() < cooldown_until

    blocked = None
    if open_appeal is not None:
        blocked = Conflict(
            f"You already have an open appeal (#{open_appeal}). It covers every dataset your account "
            "appears in, so there is no need for another. You can follow it, reply to it or withdraw it.",
            code="appeal_open",
        )
    elif not footprint:
        blocked = Conflict(
            "Your account does not appear in any published dataset, so there is nothing to appeal.",
            code="not_in_any_dataset",
        )
    return {
        "footprint": footprint,
        "open_appeal_id": open_appeal,
        "blocked": blocked,
        "needs_new_information": needs_new_information,
        "denied_at": denied_at,
        "cooldown_until": cooldown_until,
        "cooldown_days": cooldown_days,
    }


def filing_status(principal) -> dict:
    """Whether the owner may file now, and why not; what the filing form needs to show."""
    policy.authorize(principal, "appeal.file")
    status = _eligibility(principal)
    status["account"] = describe(principal)
    return status


def overview(principal) -> dict:
    """The owner's home page: their account, where it appears, their appeals, whether they may file."""
    policy.authorize(principal, "footprint.view")
    status = _eligibility(principal)
    status["account"] = describe(principal)
    status["appeals"] = [
        {
            "id": a.id,
            "status": a.status,
            "status_title": table.title(a.status),
            "created_at": iso(a.created_at),
            "updated_at": iso(a.updated_at),
            "is_open": a.is_open,
        }
        for a in list_own_appeals(principal)
    ]
    return status


def list_own_appeals(principal) -> list[Appeal]:
    """The owner's appeals, newest first."""
    policy.authorize(principal, "appeal.view_own")
    return list(
        db.session.scalars(
            select(Appeal).where(Appeal.account_id == principal.id).order_by(Appeal.created_at.desc(), Appeal.id.desc())
        )
    )


def _own_appeal(principal, action: str, appeal_id, lock: bool = False) -> Appeal:
    policy.authorize(principal, action)
    try:
        appeal_id = int(appeal_id)
    except (TypeError, ValueError):
        raise NotFound("No such appeal.") from None
    query = select(Appeal).where(Appeal.id == appeal_id)
    if lock:
        # Only the appeal row: the joined (nullable) relations cannot be locked on PostgreSQL.
        query = query.with_for_update(of=Appeal).execution_options(populate_existing=True)
    appeal = db.session.scalar(query)
    if appeal is None:
        raise NotFound("No such appeal.")
    policy.authorize(principal, action, appeal)  # someone else's appeal: NotFound, never Forbidden
    return appeal


def get_own_appeal(principal, appeal_id) -> Appeal:
    """One of the owner's own appeals; any other id answers NotFound."""
    return _own_appeal(principal, "appeal.view_own", appeal_id)


def appeal_to_owner_dict(appeal: Appeal) -> dict:
    """The appeal as its owner sees it (pages and API): no staff identities, no internal notes."""
    title, explanation = table.STATUS_TEXT[appeal.status]
    timeline = appeals.timeline(appeal, for_owner=True)
    releases = None
    for item in reversed(timeline):
        if item["type"] == "status" and item["data"] and item["data"].get("releases"):
            releases = item["data"]["releases"]
            break
    decision = None
    if appeal.status in table.DECIDED:
        label = None
        if appeal.decision_reason_code:
            label = db.session.scalar(select(ReasonCode.label).where(ReasonCode.code == appeal.decision_reason_code))
        decision = {
            "outcome": "denied" if appeal.status == "denied" else "approved",
            "remedy": appeal.decision_remedy if appeal.status != "denied" else None,
            "reason_code": appeal.decision_reason_code,
            "reason_label": label,
            "statement": appeal.decision_statement,
            "decided_at": iso(appeal.decided_at),
            "new_appeal_from": None,
        }
        if appeal.status == "denied":
            denied_at = next((parse_iso(i["at"]) for i in timeline
                              if i["type"] == "status" and i["status"] == "denied"), None)
            if denied_at is not None:
                cooldown = timedelta(days=runtime.settings().reappeal_cooldown_days)
                decision["new_appeal_from"] = iso(denied_at + cooldown)
    return {
        "id": appeal.id,
        "status": appeal.status,
        "status_title": title,
        "status_explanation": explanation,
        "is_open": appeal.is_open,
        "reason": appeal.reason,
        "reason_label": REASON_LABELS.get(appeal.reason, appeal.reason),
        "statement": appeal.statement,
        "contact_email": appeal.contact_email,
        "compromised_from": iso(appeal.compromised_from),
        "compromised_until": iso(appeal.compromised_until),
        "new_information": appeal.new_information,
        "created_at": iso(appeal.created_at),
        "updated_at": iso(appeal.updated_at),
        "due_at": iso(appeal.due_at) if appeal.is_open else None,
        "info_due_at": iso(appeal.info_due_at) if appeal.status in table.WAITING_FOR_OWNER else None,
        "version": appeal.version,
        "datasets": [
            {
                "dataset": d.dataset,
                "version": d.version,
                "authored_tweets": d.authored_tweets,
                "referring_rows": d.referring_rows,
                "hashed_publicly": d.hashed_publicly,
            }
            for d in appeal.datasets
        ],
        "decision": decision,
        "releases": releases,
        "can_reply": appeal.status in table.WAITING_FOR_OWNER,
        "can_withdraw": appeals.can_move(appeal.status, "withdrawn"),
        "timeline": timeline,
    }


# --- validation -----------------------------------------------------------------------------


def _text(data: dict, name: str, label: str, problems: dict, required: bool) -> str | None:
    value, problem = text_problem(data.get(name), label, required)
    if problem:
        problems[name] = problem
    return value


def _date(data: dict, name: str, label: str, problems: dict) -> date | None:
    value = data.get(name)
    if value is None or value == "":
        problems[name] = f"{label} is required when the account was compromised."
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    problems[name] = f"{label} must be a date written as YYYY-MM-DD, for example 2019-03-31."
    return None


def _validate_filing(data: dict) -> dict:
    problems: dict[str, str] = {}
    reason = data.get("reason")
    if reason not in REASONS:
        problems["reason"] = "Choose why you are appealing: included in error, compromised, or another reason."
    statement = _text(data, "statement", "Your statement", problems, required=True)
    contact_email = data.get("contact_email")
    contact_email = contact_email.strip() if isinstance(contact_email, str) else ""
    if problem := email_problem(contact_email):
        problems["contact_email"] = problem
    new_information = _text(data, "new_information", "New information", problems, required=False)

    compromised_from = compromised_until = None
    if reason == "compromised":
        compromised_from = _date(data, "compromised_from", "The date you lost control", problems)
        compromised_until = _date(data, "compromised_until", "The date you regained control", problems)
        today = utcnow().date()
        if compromised_from and compromised_from > today:
            problems["compromised_from"] = "The date you lost control cannot be in the future."
        if compromised_until and compromised_until > today:
            problems["compromised_until"] = "The date you regained control cannot be in the future."
        if compromised_from and compromised_until and compromised_until < compromised_from:
            problems["compromised_until"] = "The date you regained control must be on or after the date you lost it."
    if problems:
        raise Invalid("Some answers need your attention: " + " ".join(problems.values()), fields=problems)
    return {
        "reason": reason,
        "statement": statement,
        "contact_email": contact_email,
        "compromised_from": compromised_from,
        "compromised_until": compromised_until,
        "new_information": new_information,
    }


# --- changing ------------------------------------------------------------------------------


@atomic
def file_appeal(principal, actor: Actor, data: dict) -> Appeal:
    """File one appeal covering every dataset the owner's account appears in.

    `data` holds reason, statement, contact_email, and where they apply compromised_from,
    compromised_until (YYYY-MM-DD) and new_information. Refused: an account in no dataset,
    a second open appeal, a re-appeal within the cool-down without new information.
    """
    policy.authorize(principal, "appeal.file")
    # Lock the account row so two simultaneous filings cannot both pass the open-appeal check.
    account = db.session.scalar(
        select(Account).where(Account.id == principal.id).with_for_update()
        .execution_options(populate_existing=True)
    )
    status = _eligibility(account)
    if status["blocked"] is not None:
        raise status["blocked"]
    values = _validate_filing(data)
    if status["needs_new_information"] and not values["new_information"]:
        until = status["cooldown_until"].strftime("%d %B %Y")
        message = (
            f"Your previous appeal was denied less than {status['cooldown_days']} days ago. Until {until}, "
            "a new appeal must bring new information: tell us what is new since that decision."
        )
        raise Conflict(message, code="reappeal_too_soon", fields={"new_information": message})

    now = utcnow()
    footprint = status["footprint"]
    appeal = Appeal(
        account_id=account.id,
        status=None,
        created_at=now,
        updated_at=now,
        due_at=now + timedelta(days=runtime.settings().sla_days),
        footprint_size=sum(e["authored_tweets"] + e["referring_rows"] for e in footprint),
        datasets=[
            AppealDataset(
                dataset=e["dataset"],
                version=e["version"],
                authored_tweets=e["authored_tweets"],
                referring_rows=e["referring_rows"],
                hashed_publicly=e["hashed_publicly"],
            )
            for e in footprint
        ],
        **values,
    )
    appeals.transition(appeal, "filed", actor, "appeal.file")
    db.session.commit()
    dispatch.mail()
    return appeal


@atomic
def reply(principal, actor: Actor, appeal_id, body, expected_version=None) -> Appeal:
    """The owner answers a request for information; the appeal goes back to its reviewer."""
    appeal = _own_appeal(principal, "appeal.reply", appeal_id, lock=True)
    appeals.check_version(appeal, expected_version)
    if appeal.status != "info_requested":
        raise Conflict(
            "You can reply only while the reviewer is waiting for information from you.",
            code="not_awaiting_reply",
        )
    problems: dict[str, str] = {}
    text = _text({"body": body}, "body", "Your reply", problems, required=True)
    if problems:
        raise Invalid(problems["body"], fields=problems)
    before = appeals.snapshot(appeal)
    db.session.add(Message(appeal_id=appeal.id, author_kind="account", body=text))
    appeal.info_due_at = None
    appeals.transition(appeal, "in_review", actor, "appeal.reply", before=before)
    db.session.commit()
    dispatch.mail()
    return appeal


@atomic
def withdraw(principal, actor: Actor, appeal_id, expected_version=None) -> Appeal:
    """The owner withdraws their appeal; any reviewer's claim on it is released."""
    appeal = _own_appeal(principal, "appeal.withdraw", appeal_id, lock=True)
    appeals.check_version(appeal, expected_version)
    if not appeals.can_move(appeal.status, "withdrawn"):
        if appeal.is_open:
            message = ("The correction of the published data is already under way, "
                       "so this appeal can no longer be withdrawn.")
        else:
            message = (f"This appeal is already closed ({table.title(appeal.status).lower()}); "
                       "there is nothing to withdraw.")
        raise Conflict(message, code="cannot_withdraw")
    before = appeals.snapshot(appeal)
    appeals.clear_claim(appeal)
    appeal.info_due_at = None
    appeals.transition(appeal, "withdrawn", actor, "appeal.withdraw", before=before)
    db.session.commit()
    dispatch.mail()
    return appeal
