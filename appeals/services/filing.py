"""The owner's side of an appeal: file it, follow it, reply to a request for information, withdraw it."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from appeals import db, i18n, requests, runtime
from appeals import status as table
from appeals.db import utcnow
from appeals.i18n import gettext as _
from appeals.i18n import N_, lazy_gettext
from appeals.models import OPEN_STATUSES, REASONS, Account, Appeal, AppealDataset, AppealEvent, Message, ReasonCode
from appeals.requests import TEXT_MAX, iso, parse_iso, text_problem  # noqa: F401 - pages read filing.TEXT_MAX
from appeals.services import appeals, dispatch, evidence, policy
from appeals.services.accounts import describe, email_problem
from appeals.services.audit import Actor
from appeals.services.errors import Conflict, Invalid, NotFound
from appeals.services.footprint import entries_for_user_id
from appeals.services.transactions import atomic

# The filing form's fields in the order it asks them (error summaries follow it).
FIELD_ORDER = ("reason", "compromised_from", "compromised_until", "statement", "new_information",
               "contact_email", "evidence")

REASON_LABELS = {
    "included_in_error": lazy_gettext("My account was included in error"),
    "compromised": lazy_gettext("My account was compromised (someone else controlled it) at the time"),
    "other": lazy_gettext("Another reason"),
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
            _("You already have an open appeal (#%(id)s). It covers every dataset your account "
              "appears in, so there is no need for another. You can follow it, reply to it or withdraw it.",
              id=open_appeal),
            code="appeal_open",
        )
    elif not footprint:
        blocked = Conflict(
            _("Your account does not appear in any published dataset, so there is nothing to appeal."),
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
        raise NotFound(_("No such appeal.")) from None
    query = select(Appeal).where(Appeal.id == appeal_id)
    if lock:
        # Only the appeal row: the joined (nullable) relations cannot be locked on PostgreSQL.
        query = query.with_for_update(of=Appeal).execution_options(populate_existing=True)
    appeal = db.session.scalar(query)
    if appeal is None:
        raise NotFound(_("No such appeal."))
    policy.authorize(principal, action, appeal)  # someone else's appeal: NotFound, never Forbidden
    return appeal


def get_own_appeal(principal, appeal_id) -> Appeal:
    """One of the owner's own appeals; any other id answers NotFound."""
    return _own_appeal(principal, "appeal.view_own", appeal_id)


def filed_fields(appeal: Appeal) -> dict:
    """What the owner filed, as JSON: the same fields in the owner's and the staff's views of an appeal."""
    return {
        "reason": appeal.reason,
        "statement": appeal.statement,
        "contact_email": appeal.contact_email,
        "compromised_from": iso(appeal.compromised_from),
        "compromised_until": iso(appeal.compromised_until),
        "new_information": appeal.new_information,
        "created_at": iso(appeal.created_at),
    }


def filed_datasets(appeal: Appeal) -> list[dict]:
    """The datasets the appeal covers, as they stood when it was filed (JSON)."""
    return [
        {"dataset": d.dataset, "version": d.version, "authored_tweets": d.authored_tweets,
         "referring_rows": d.referring_rows, "hashed_publicly": d.hashed_publicly}
        for d in appeal.datasets
    ]


def appeal_to_owner_dict(appeal: Appeal) -> dict:
    """The appeal as its owner sees it (pages and API): no staff identities, no internal notes."""
    title, explanation = table.title(appeal.status), table.explanation(appeal.status)
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
        **filed_fields(appeal),
        "reason_label": REASON_LABELS.get(appeal.reason, appeal.reason),
        "updated_at": iso(appeal.updated_at),
        "due_at": iso(appeal.due_at) if appeal.is_open else None,
        "info_due_at": iso(appeal.info_due_at) if appeal.status in table.WAITING_FOR_OWNER else None,
        "version": appeal.version,
        "datasets": filed_datasets(appeal),
        "decision": decision,
        "releases": releases,
        "can_reply": appeal.status in table.WAITING_FOR_OWNER,
        "attachments": evidence.listing(appeal.id),
        "can_withdraw": appeals.can_move(appeal.status, "withdrawn"),
        "timeline": timeline,
    }


# --- validation -----------------------------------------------------------------------------


def _text(data: dict, name: str, label: str, problems: dict, required: bool) -> str | None:
    value, problem = text_problem(data.get(name), label, required)
    if problem:
        problems[name] = problem
    return value


DATE_PARTS = ("day", "month", "year")
# Which parts of a three-part date are blank -> what to say (one whole sentence each, for translators).
MISSING_DATE_PARTS = {
    ("day",): N_("%(field)s must include a day"),
    ("month",): N_("%(field)s must include a month"),
    ("year",): N_("%(field)s must include a year"),
    ("day", "month"): N_("%(field)s must include a day and a month"),
    ("day", "year"): N_("%(field)s must include a day and a year"),
    ("month", "year"): N_("%(field)s must include a month and a year"),
}


def _lower_first(text: str) -> str:
    # "Date you lost control" inside a sentence; scripts without case are left as they are.
    return text[:1].lower() + text[1:]


def parse_date_parts(day, month, year, label: str) -> tuple[date | None, str | None]:
    """A date from its three typed parts (GOV.UK pattern): (date, None), or (None, a message naming the part).

    Blank parts are named ("must include a month and a year"); years have 4 digits, so "19" or "20190"
    never becomes a date nobody meant. Returns (None, None) when all three parts are blank.
    """
    parts = {"day": day, "month": month, "year": year}
    cleaned = {k: (v.strip() if isinstance(v, str) else ("" if v is None else str(v))) for k, v in parts.items()}
    missing = [k for k in DATE_PARTS if not cleaned[k]]
    if len(missing) == 3:
        return None, None
    if missing:
        return None, _(MISSING_DATE_PARTS[tuple(missing)], field=label)
    if not all(cleaned[k].isascii() and cleaned[k].isdigit() for k in DATE_PARTS):
        return None, _("%(field)s must be a real date, written in numbers, for example 27 3 2019", field=label)
    if len(cleaned["year"]) != 4:
        return None, _("The year of %(field)s must have 4 numbers, for example 2019", field=_lower_first(label))
    try:
        return date(int(cleaned["year"]), int(cleaned["month"]), int(cleaned["day"])), None
    except ValueError:
        if not 1 <= int(cleaned["month"]) <= 12:
            return None, _("%(field)s must be a real date: the month must be a number from 1 to 12", field=label)
        return None, _("%(field)s must be a real date: that month has no day %(day)s", field=label,
                       day=int(cleaned["day"]))


def _date(data: dict, name: str, label: str, problems: dict) -> date | None:
    # Pages send three parts (<name>_day, _month, _year); the API sends one YYYY-MM-DD string.
    if any(f"{name}_{part}" in data for part in DATE_PARTS):
        value, problem = parse_date_parts(*(data.get(f"{name}_{part}") for part in DATE_PARTS), label=label)
        if problem:
            problems[name] = problem
            return None
        if value is None:
            problems[name] = _("Enter the %(field)s, because your account was compromised", field=_lower_first(label))
        return value
    value = data.get(name)
    if value is None or value == "":
        problems[name] = _("Enter the %(field)s, because your account was compromised", field=_lower_first(label))
        return None
    if isinstance(value, date):
        return value
    if (parsed := requests.day(value)) is not None:
        return parsed
    problems[name] = _("%(field)s must be a date written as YYYY-MM-DD, for example 2019-03-31.", field=label)
    return None


def _validate_filing(data: dict) -> dict:
    problems: dict[str, str] = {}
    reason = data.get("reason")
    if reason not in REASONS:
        problems["reason"] = _("Choose why you are appealing: included in error, compromised, or another reason.")
    statement = _text(data, "statement", _("Your statement"), problems, required=True)
    contact_email = data.get("contact_email")
    contact_email = contact_email.strip() if isinstance(contact_email, str) else ""
    if problem := email_problem(contact_email):
        problems["contact_email"] = problem
    new_information = _text(data, "new_information", _("New information"), problems, required=False)

    compromised_from = compromised_until = None
    if reason == "compromised":
        compromised_from = _date(data, "compromised_from", _("Date you lost control"), problems)
        compromised_until = _date(data, "compromised_until", _("Date you regained control"), problems)
        today = utcnow().date()
        if compromised_from and compromised_from > today:
            problems["compromised_from"] = _("The date you lost control cannot be in the future.")
        if compromised_until and compromised_until > today:
            problems["compromised_until"] = _("The date you regained control cannot be in the future.")
        if compromised_from and compromised_until and compromised_until < compromised_from:
            problems["compromised_until"] = _("The date you regained control must be on or after the date you lost it.")
    else:
        # The page hides its date parts with the other reasons, and what they hold is ignored; a date
        # string (the API's form) must still be a date even where it is not used (schemathesis).
        for name, label in (("compromised_from", _("Date you lost control")),
                            ("compromised_until", _("Date you regained control"))):
            value = data.get(name)
            if isinstance(value, str) and value and requests.day(value) is None:
                problems[name] = _("%(field)s must be a date written as YYYY-MM-DD, for example 2019-03-31.",
                                   field=label)
    if problems:
        # In the order the form asks, one sentence each (the page lists them; the API reads `fields`).
        ordered = [problems[k] for k in FIELD_ORDER if k in problems] + [
            v for k, v in problems.items() if k not in FIELD_ORDER]
        raise Invalid(_("Some answers need your attention.") + " " + " ".join(
            m if m.endswith((".", "。")) else m + _(".") for m in ordered), fields=problems)
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
def file_appeal(principal, actor: Actor, data: dict, files: list | None = None) -> Appeal:
    """File one appeal covering every dataset the owner's account appears in.

    `data` holds reason, statement, contact_email, and where they apply compromised_from,
    compromised_until (YYYY-MM-DD, or three parts <name>_day/_month/_year) and new_information;
    `files` are evidence.Upload objects (checked with the form). Refused: an account in no dataset,
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
    checked, file_problem = evidence.check(files or [])
    try:
        values = _validate_filing(data)
    except Invalid as error:
        if file_problem:
            error.fields["evidence"] = file_problem
        raise
    if file_problem:
        raise Invalid(file_problem, fields={"evidence": file_problem})
    if status["needs_new_information"] and not values["new_information"]:
        message = i18n.ngettext(
            "Your previous appeal was denied less than %(num)s day ago. Until %(until)s, "
            "a new appeal must bring new information: tell us what is new since that decision.",
            "Your previous appeal was denied less than %(num)s days ago. Until %(until)s, "
            "a new appeal must bring new information: tell us what is new since that decision.",
            status["cooldown_days"], until=i18n.when(status["cooldown_until"].date()),
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
        language=i18n.current_locale(),
        **values,
    )
    appeals.transition(appeal, "filed", actor, "appeal.file")
    evidence.attach(appeal, checked)
    db.session.commit()
    dispatch.mail()
    dispatch.warm_activity([appeal.id])  # the reviewer's first view then reads the kept summary
    return appeal


@atomic
def reply(principal, actor: Actor, appeal_id, body, expected_version=None, files: list | None = None) -> Appeal:
    """The owner answers a request for information (with evidence.Upload files); the appeal goes back to its reviewer."""
    appeal = _own_appeal(principal, "appeal.reply", appeal_id, lock=True)
    appeals.check_version(appeal, expected_version)
    if appeal.status != "info_requested":
        raise Conflict(
            _("You can reply only while the reviewer is waiting for information from you."),
            code="not_awaiting_reply",
        )
    problems: dict[str, str] = {}
    text = _text({"body": body}, "body", _("Your reply"), problems, required=True)
    checked, file_problem = evidence.check(files or [])
    if file_problem:
        problems["evidence"] = file_problem
    if problems:
        raise Invalid(" ".join(problems.values()), fields=problems)
    before = appeals.snapshot(appeal)
    message = Message(appeal_id=appeal.id, author_kind="account", body=text)
    db.session.add(message)
    appeal.info_due_at = None
    appeals.transition(appeal, "in_review", actor, "appeal.reply", before=before)
    evidence.attach(appeal, checked, message_id=message.id)
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
            message = _("The correction of the published data is already under way, "
                        "so this appeal can no longer be withdrawn.")
        else:
            message = _("This appeal is already closed (%(status)s); there is nothing to withdraw.",
                        status=_lower_first(table.title(appeal.status)))
        raise Conflict(message, code="cannot_withdraw")
    before = appeals.snapshot(appeal)
    appeals.clear_claim(appeal)
    appeal.info_due_at = None
    appeals.transition(appeal, "withdrawn", actor, "appeal.withdraw", before=before)
    db.session.commit()
    dispatch.mail()
    return appeal
