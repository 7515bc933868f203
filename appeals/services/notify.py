"""Email: written to the outbox in the caller's transaction, delivered after commit.

With SMTP configured (APPEALS_SMTP_HOST), `deliver_pending` sends; without it,
messages are logged and kept in the outbox table so the demo can show them.
No message ever names an account other than its recipient's own.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from sqlalchemy import select

from appeals import db, runtime
from appeals.db import utcnow
from appeals.models import Appeal, AppealEvent, OutboxMessage

log = logging.getLogger("appeals.mail")


def enqueue(to_addr: str, subject: str, body: str, kind: str) -> OutboxMessage:
    """Add an email to the outbox in the current transaction."""
    message = OutboxMessage(to_addr=to_addr, subject=subject, body=body, kind=kind, status="pending")
    db.session.add(message)
    return message


def status_changed(appeal: Appeal, event: AppealEvent) -> OutboxMessage:
    """Queue the owner's email for a change of status of their appeal."""
    from appeals.services.appeals import STATUS_TEXT

    title, explanation = STATUS_TEXT[event.status_to]
    url = f"{runtime.settings().public_url}/appeals/{appeal.id}"
    lines = [
        "Hello,",
        "",
        f"The status of your appeal #{appeal.id} is now: {title}.",
        "",
        explanation,
    ]
    if event.public_note:
        lines += ["", event.public_note]
    releases = (event.data or {}).get("releases")
    if releases:
        lines += ["", "Corrected releases published:"]
        lines += [f"  {name}: version {version}" for name, version in sorted(releases.items())]
    lines += ["", f"Follow your appeal: {url}", "", "This message was sent because you filed an appeal."]
    return enqueue(appeal.contact_email, f"Your appeal #{appeal.id}: {title}", "\n".join(lines), "status")


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
