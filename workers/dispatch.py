"""The senders bound into `appeals.services.dispatch` at start: correction jobs and mail jobs on RQ. No Flask.

`install()` runs in `runtime.bootstrap`, so the web app, the worker and the command
line all hand work to the same queues. Mail jobs go on their own queue, so a long
correction run never holds an email back on a worker that listens to both.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timezone

import redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

from appeals.db import utcnow
from appeals.services import dispatch
from workers import queues

log = logging.getLogger("appeals.dispatch")

MAIL_QUEUE = "mail"
DELIVER_JOB = "workers.jobs.deliver_mail"
MAIL_RESULT_TTL = 600  # a delivery's result matters for minutes, not days
MAIL_FAILURE_TTL = 7 * 24 * 3600


def install() -> None:
    """Bind the RQ senders into the services' dispatch."""
    dispatch.bind(corrections=send_corrections, mail=send_mail)


def mail_queue(connection: redis.Redis) -> Queue:
    """The queue mail deliveries go through."""
    return Queue(MAIL_QUEUE, connection=connection)


def send_corrections(ids: list[int]) -> None:
    """A job for each queued correction that lacks a live one."""
    queues.ensure_jobs(ids)


def send_mail(when: datetime | None = None) -> None:
    """A delivery job now, or one scheduled for `when` (naive UTC) for held messages.

    Scheduled jobs get one id per second of their due time, so a burst of held
    messages due together asks for one job (enqueue refuses the duplicate).
    """
    queue = mail_queue(queues.connect())
    options = dict(result_ttl=MAIL_RESULT_TTL, failure_ttl=MAIL_FAILURE_TTL,
                   retry=Retry(max=3, interval=[5, 30, 60]), description="deliver due outbox messages")
    if when is None or when <= utcnow():
        queue.enqueue(DELIVER_JOB, **options)
        return
    second = math.ceil(when.replace(tzinfo=timezone.utc).timestamp())
    due = datetime.fromtimestamp(second, tz=timezone.utc)
    try:
        queue.enqueue_at(due, DELIVER_JOB, job_id=f"mail-at-{second}", unique=True, **options)
    except DuplicateJobError:
        pass  # a delivery is already scheduled for that second: it takes this message too
