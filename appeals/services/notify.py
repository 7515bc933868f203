"""Email: written to the outbox in the caller's transaction; delivered by a worker job, never in a request.

Requests only add rows (`enqueue`, `status_changed`) and, after commit, call
`dispatch.mail()`. The worker's `deliver_pending` claims due rows (SELECT ... FOR
UPDATE SKIP LOCKED on PostgreSQL; a conditional UPDATE on SQLite), so two workers
never send one message twice, then sends them over SMTP (APPEALS_SMTP_HOST) or,
without SMTP, logs them and keeps them in the outbox table so the demo can show them.

A status email is held for APPEALS_MAIL_HOLD_SECONDS: a later change of the same
appeal within that time replaces it (the earlier row becomes `merged`), keeping the
first one's deadline, so the owner gets one email with the latest state.
No message ever names an account other than its recipient's own. Owners' emails go out
in the owner's language (issue 16).
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import and_, func, or_, select, update

from appeals import db, i18n, runtime
from appeals import status as table
from appeals.db import utcnow
from appeals.i18n import gettext as _
from appeals.models import Appeal, AppealEvent, OutboxMessage

log = logging.getLogger("appeals.mail")

# A claim older than this belongs to a worker that died while sending: the message is taken again.
CLAIM_LEASE = timedelta(minutes=15)
# Claimed at a time: with the 10 s SMTP timeout a batch ends well within the lease.
BATCH = 20
MAX_ATTEMPTS = 5
# Wait before the next attempt after a failed one, by attempts made so far.
BACKOFF_SECONDS = (30, 120, 600, 1800)


def enqueue(to_addr: str, subject: str, body: str, kind: str, merge_key: str | None = None,
            hold_seconds: int = 0) -> OutboxMessage:
    """Add an email to the outbox in the current transaction, due in `hold_seconds`.

    With a `merge_key` and a hold, messages with that key still waiting are replaced by
    this one, which keeps the earliest deadline among them. Without a hold each goes alone.
    """
    now = utcnow()
    not_before = now + timedelta(seconds=hold_seconds)
    if merge_key is not None and hold_seconds > 0:
        waiting = db.session.execute(
            select(OutboxMessage.id, OutboxMessage.not_before)
            .where(OutboxMessage.merge_key == merge_key, OutboxMessage.status == "pending")
        ).all()
        if waiting:
            not_before = min([not_before, *(due or now for _id, due in waiting)])
            # The status guard: a row a worker has claimed meanwhile is sent as it is.
            db.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([i for i, _due in waiting]), OutboxMessage.status == "pending")
                .values(status="merged")
                .execution_options(synchronize_session=False)
            )
    message = OutboxMessage(to_addr=to_addr, subject=subject, body=body, kind=kind, status="pending",
                            merge_key=merge_key, not_before=not_before, created_at=now)
    db.session.add(message)
    return message


def owner_language(appeal: Appeal) -> str:
    """The language of the owner's emails: the account's stored choice, else the one they filed in."""
    account = appeal.account
    return i18n.normalize(getattr(account, "language", None)) or i18n.normalize(appeal.language) or i18n.DEFAULT


def status_changed(appeal: Appeal, event: AppealEvent) -> OutboxMessage:
    """Queue the owner's email for a change of status of their appeal, in the owner's language."""
    with i18n.use_locale(owner_language(appeal)):
        title, explanation = table.title(event.status_to), table.explanation(event.status_to)
        url = f"{runtime.settings().public_url}/appeals/{appeal.id}"
        lines = [
            _("Hello,"),
            "",
            _("The status of your appeal #%(id)s is now: %(status)s.", id=appeal.id, status=title),
            "",
            explanation,
        ]
        if event.public_note:
            # The reviewer's own words, sent as written.
            lines += ["", event.public_note]
        releases = (event.data or {}).get("releases")
        if releases:
            lines += ["", _("Corrected releases published:")]
            lines += ["  " + _("%(dataset)s: version %(version)s", dataset=name, version=i18n.format_number(version))
                      for name, version in sorted(releases.items())]
        lines += ["", _("Follow your appeal: %(url)s", url=url), "",
                  _("This message was sent because you filed an appeal.")]
        subject = _("Your appeal #%(id)s: %(status)s", id=appeal.id, status=title)
    return enqueue(appeal.contact_email, subject, "\n".join(lines), "status",
                   merge_key=f"appeal-status:{appeal.id}", hold_seconds=runtime.settings().mail_hold_seconds)


def deliver_pending(now: datetime | None = None) -> int:
    """The worker's delivery: claim due messages, send (or log) each once; returns how many were handled.

    Never call it from a request: requests call `dispatch.mail()` after their commit.
    """
    settings = runtime.settings()
    worker = uuid.uuid4().hex
    handled = 0
    while True:
        seen, claimed = _claim(worker, now or utcnow())
        if not seen:
            return handled
        # Claimed nothing of what it saw: another worker was faster; look again.
        for message in claimed:
            _deliver(settings, message)
            db.session.commit()
        handled += len(claimed)


def _claim(worker: str, now: datetime) -> tuple[int, list[OutboxMessage]]:
    """Mark up to BATCH due messages as this worker's (status `sending`), in one short transaction.

    Returns how many due messages it saw and those it claimed.
    """
    session = db.session
    due = or_(
        and_(OutboxMessage.status == "pending",
             or_(OutboxMessage.not_before.is_(None), OutboxMessage.not_before <= now)),
        and_(OutboxMessage.status == "sending", OutboxMessage.claimed_at < now - CLAIM_LEASE),
    )
    # PostgreSQL: rows another worker is claiming are skipped, not waited for. SQLite renders no
    # FOR UPDATE; there the status guard of the UPDATE below is the claim (writers are serialised).
    ids = session.scalars(
        select(OutboxMessage.id).where(due).order_by(OutboxMessage.id).limit(BATCH).with_for_update(skip_locked=True)
    ).all()
    if not ids:
        session.commit()  # ends the read; unlike a rollback it leaves the caller's loaded objects alone
        return 0, []
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), due)
        .values(status="sending", claimed_by=worker, claimed_at=now, attempts=OutboxMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    # populate_existing: the session keeps objects across commits, and the UPDATE bypassed them.
    return len(ids), list(session.scalars(
        select(OutboxMessage).where(OutboxMessage.claimed_by == worker, OutboxMessage.status == "sending")
        .order_by(OutboxMessage.id).execution_options(populate_existing=True)
    ))


def _deliver(settings, message: OutboxMessage) -> None:
    if not settings.smtp_host:
        log.info("mail (no SMTP configured) to=%s subject=%s\n%s", message.to_addr, message.subject, message.body)
        message.status = "logged"
        message.sent_at = utcnow()
        return
    try:
        _send(settings, message)
    except (OSError, smtplib.SMTPException) as exc:
        message.error = str(exc)[:1000]
        if message.attempts >= MAX_ATTEMPTS:
            message.status = "failed"
        else:
            # Back to the queue with a backoff; the worker's sweep picks it up when it is due.
            message.status = "pending"
            wait = BACKOFF_SECONDS[min(message.attempts, len(BACKOFF_SECONDS)) - 1]
            message.not_before = utcnow() + timedelta(seconds=wait)
        log.warning("mail to %s failed (attempt %d): %s", message.to_addr, message.attempts, exc)
    else:
        message.status = "sent"
        message.sent_at = utcnow()


def next_due() -> datetime | None:
    """When the earliest waiting message (held, or waiting for a retry) falls due; None when nothing waits."""
    value = db.session.scalar(select(func.min(OutboxMessage.not_before)).where(OutboxMessage.status == "pending"))
    db.session.commit()  # ends the read without expiring anything
    return value


def _send(settings, message: OutboxMessage) -> None:
    email = EmailMessage()
    email["From"] = settings.mail_from
    email["To"] = message.to_addr
    email["Subject"] = message.subject
    email.set_content(message.body)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
        smtp.send_message(email)
