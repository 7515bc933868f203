"""Mail is delivered by the worker, each message once, and status emails seconds apart are merged.

Two worker processes deliver one outbox at the same time into a real SMTP server
(aiosmtpd), which counts what arrives; on PostgreSQL the claim is SELECT ... FOR UPDATE
SKIP LOCKED, on SQLite a conditional UPDATE.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes

import pytest
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from appeals import db, runtime
from appeals.db import utcnow
from appeals.models import OutboxMessage
from appeals.services import notify
from tests.conftest import _free_port
from workers import queues
from workers.dispatch import mail_queue

MESSAGES = 60
# Each worker process waits for this file, so both start claiming at the same moment.
WORKER = """
import logging, os, sys, time
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
from workers import jobs
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
print(jobs.deliver_mail()["delivered"])
"""


@pytest.fixture
def slow_smtp():
    """An aiosmtpd server that takes 20 ms per message (so deliveries overlap) and keeps every one."""
    from aiosmtpd.controller import Controller

    received: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            await asyncio.sleep(0.02)
            received.append(message_from_bytes(envelope.content))
            return "250 OK"

    port = _free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, received
    controller.stop()


def _fill_outbox(count: int) -> None:
    for i in range(count):
        notify.enqueue(f"reader{i % 7}@example.org", f"message {i}", f"Body of message {i}.", "test")
    db.session.commit()


def _two_workers(env: dict, tmp_path) -> list[subprocess.CompletedProcess]:
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(go)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(2)  # both processes have imported and wait for the signal
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def test_two_workers_deliver_one_outbox_and_each_message_arrives_once(settings_env, slow_smtp, tmp_path):
    port, received = slow_smtp
    _fill_outbox(MESSAGES)
    env = {**settings_env, "APPEALS_SMTP_HOST": "127.0.0.1", "APPEALS_SMTP_PORT": str(port)}
    results = _two_workers(env, tmp_path)

    arrivals = Counter(m["Subject"] for m in received)
    assert arrivals == Counter({f"message {i}": 1 for i in range(MESSAGES)})
    handled = [int(r.stdout.strip()) for r in results]
    assert sum(handled) == MESSAGES and min(handled) > 0, handled  # both worked, neither twice
    db.session.expire_all()
    rows = db.session.scalars(select(OutboxMessage)).all()
    assert {m.status for m in rows} == {"sent"} and {m.attempts for m in rows} == {1}


def test_without_smtp_two_workers_log_each_message_once(settings_env, tmp_path):
    _fill_outbox(MESSAGES)
    results = _two_workers(settings_env, tmp_path)

    logged = Counter(line.split("subject=", 1)[1] for r in results for line in r.stderr.splitlines()
                     if "mail (no SMTP configured)" in line)
    assert logged == Counter({f"message {i}": 1 for i in range(MESSAGES)})
    db.session.expire_all()
    assert {m.status for m in db.session.scalars(select(OutboxMessage))} == {"logged"}


def test_a_failed_send_is_retried_later_then_given_up(settings):
    """SMTP down: the message goes back to the queue with a backoff, and fails after the last attempt."""
    runtime.bootstrap(replace(settings, smtp_host="127.0.0.1", smtp_port=_free_port()))  # nobody listens
    _fill_outbox(1)
    assert notify.deliver_pending() == 1
    row = db.session.scalars(select(OutboxMessage)).one()
    assert (row.status, row.attempts) == ("pending", 1) and row.error and row.not_before > utcnow()
    assert notify.deliver_pending() == 0  # not due yet
    for _ in range(notify.MAX_ATTEMPTS):
        notify.deliver_pending(now=utcnow() + timedelta(days=1))
    db.session.expire_all()
    row = db.session.scalars(select(OutboxMessage)).one()
    assert (row.status, row.attempts) == ("failed", notify.MAX_ATTEMPTS)


def test_queued_correcting_corrected_within_the_hold_sends_one_email(
        corpus_account, approve, confirm, drain, fast, smtp_server):
    """The confirmation, the run's start and its end come seconds apart: the owner gets one email, the last state."""
    runtime.bootstrap(replace(runtime.settings(), mail_hold_seconds=60))
    start = utcnow()
    appeal_id = confirm(approve(corpus_account, "rehash")).id
    drain()  # the correction runs: correction_queued -> correcting -> corrected

    rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [(m.subject.split(": ")[1], m.status) for m in rows] == [
        ("Correction queued", "merged"), ("Correcting", "merged"), ("Corrected", "pending")]
    assert smtp_server == []  # held: nothing went out yet
    held = rows[-1]
    assert timedelta(0) < held.not_before - start <= timedelta(seconds=61)
    # The worker has a delivery scheduled for the end of the hold (the sweep would also find it).
    scheduled = ScheduledJobRegistry(queue=mail_queue(queues.connect()))
    due = [scheduled.get_scheduled_time(job_id).replace(tzinfo=None) for job_id in scheduled.get_job_ids()]
    assert any(timedelta(0) <= d - held.not_before <= timedelta(seconds=1) for d in due), (due, held.not_before)

    assert notify.deliver_pending(now=held.not_before - timedelta(seconds=1)) == 0
    assert notify.deliver_pending(now=held.not_before) == 1
    [mail] = smtp_server
    assert mail["Subject"] == f"Your appeal #{appeal_id}: Corrected"
    assert "Corrected releases published" in mail.get_payload()


def test_a_change_after_the_email_went_out_is_a_new_email(settings, make_account):
    """Merging never swallows a change the owner has not heard of: once sent, the next change mails again."""
    from tests.owner.conftest import move
    from tests.reviewer.conftest import make_appeal

    runtime.bootstrap(replace(settings, mail_hold_seconds=60))
    appeal = make_appeal(make_account("777", "someone", email="someone@example.org"), status="filed")
    move(appeal.id, "in_review")
    assert notify.deliver_pending(now=utcnow() + timedelta(seconds=61)) == 1
    move(appeal.id, "info_requested")
    move(appeal.id, "in_review")
    rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [m.status for m in rows] == ["logged", "merged", "pending"]
