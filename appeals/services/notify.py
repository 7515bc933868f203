"""Email: written to the outbox in the caller's transaction, delivered after commit.

With SMTP configured (APPEALS_SMTP_HOST), `deliver_pending` sends; without it,
messages are logged and kept in the outbox table so the demo can show them.
No message ever names an account other than its recipient's own. Owners' emails go out
in the owner's language (issue 16).
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from sqlalchemy import select

from appeals import db, i18n, runtime
from appeals.db import utcnow
from appeals.i18n import gettext as _
from appeals.models import Appeal, AppealEvent, OutboxMessage

log = logging.getLogger("appeals.mail")


def enqueue(to_addr: str, subject: str, body: str, kind: str) -> OutboxMessage:
    """Add an email to the outbox in the current transaction."""
    message = OutboxMessage(to_addr=to_addr, subject=subject, body=body, kind=kind, status="pending")
    db.session.add(message)
    return message


def owner_language(appeal: Appeal) -> str:
    """The language of the owner's emails: the account's stored choice, else the one they filed in."""
    account = appeal.account
    return i18n.normalize(getattr(account, "language", None)) or i18n.normalize(appeal.language) or i18n.DEFAULT


def status_changed(appeal: Appeal, event: AppealEvent) -> OutboxMessage:
    """Queue the owner's email for a change of status of their appeal, in the owner's language."""
    from appeals.services.appeals import STATUS_TEXT

    with i18n.use_locale(owner_language(appeal)):
        title, explanation = (str(text) for text in STATUS_TEXT[event.status_to])
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
    return enqueue(appeal.contact_email, subject, "\n".join(lines), "status")


def deliver_pending(limit: int = 100) -> int:
    """Send (or log, without SMTP) pending outbox messages; returns how many were handled.

    Runs after the transaction that wrote them has committed, so mail never reports a
    change that was rolled back.
    """
    settings = runtime.settings()
    session = db.session
    pending = session.scalars(
        select(OutboxMessage).where(OutboxMessage.status == "pending").order_by(OutboxMessage.id).limit(limit)
    ).all()
    handled = 0
    for message in pending:
        message.attempts += 1
        if not settings.smtp_host:
            log.info("mail (no SMTP configured) to=%s subject=%s\n%s", message.to_addr, message.subject, message.body)
            message.status = "logged"
            message.sent_at = utcnow()
        else:
            try:
                _send(settings, message)
            except (OSError, smtplib.SMTPException) as exc:
                # Left pending for the next delivery round unless it keeps failing.
                message.error = str(exc)[:1000]
                if message.attempts >= 5:
                    message.status = "failed"
                log.warning("mail to %s failed: %s", message.to_addr, exc)
            else:
                message.status = "sent"
                message.sent_at = utcnow()
        handled += 1
        session.commit()
    return handled


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
