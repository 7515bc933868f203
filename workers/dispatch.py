"""The senders bound into `appeals.services.dispatch` at start: correction jobs and mail jobs on RQ. No Flask.

`install()` runs in `runtime.bootstrap`, so the web app, the worker and the command
line all hand work to the same queues. Mail jobs go on their own queue, so a long
correction run never holds an email back on a worker that listens to both. Activity
summaries (a reviewer's evidence workspace, issue 15) are warmed on a queue of their own that
workers take last: a warm-up may read an account's rows for seconds and is never urgent.
"""

from __future__ import annotations

import hashlib
import json
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

ACTIVITY_QUEUE = "activity"
WARM_JOB = "workers.jobs.warm_activity"
WARM_PUBLISHED_JOB = "workers.jobs.warm_published"
ACTIVITY_RESULT_TTL = 600  # a finished warm-up only has to outlive the bursts of duplicates it coalesces
ACTIVITY_FAILURE_TTL = 24 * 3600


def install() -> None:
    """Bind the RQ senders into the services' dispatch."""
    dispatch.bind(corrections=send_corrections, mail=send_mail, warm_activity=send_warm, published=send_published)


def mail_queue(connection: redis.Redis) -> Queue:
    """The queue mail deliveries go through."""
    return Queue(MAIL_QUEUE, connection=connection)


def activity_queue(connection: redis.Redis) -> Queue:
    """The queue activity summaries are warmed through."""
    return Queue(ACTIVITY_QUEUE, connection=connection)


def send_warm(appeal_ids: list[int]) -> int:
    """A warm-up job for each appeal whose summary is not kept yet; returns how many were enqueued.

    The job's id is the summary's name (the account and the ids of the releases it covers), so
    duplicates for one account and release set coalesce into one job.
    """
    from appeals.services import activity

    keys = activity.warm_keys(appeal_ids)
    if not keys:
        return 0
    queue = activity_queue(queues.connect())
    enqueued = 0
    for appeal_id, key in keys.items():
        try:
            queue.enqueue(WARM_JOB, appeal_id, job_id=f"activity-{key}", unique=True,
                          result_ttl=ACTIVITY_RESULT_TTL, failure_ttl=ACTIVITY_FAILURE_TTL,
                          description=f"warm the activity summary of appeal {appeal_id}")
            enqueued += 1
        except DuplicateJobError:
            pass  # that account's summary over these releases is being made already
    return enqueued


def send_published(releases: dict[str, int]) -> None:
    """One job that warms the summaries of the open appeals these new releases hold (finding them takes
    an index lookup per open appeal: not for the publishing process to do)."""
    key = hashlib.sha256(json.dumps(sorted(releases.items())).encode()).hexdigest()[:24]
    try:
        activity_queue(queues.connect()).enqueue(
            WARM_PUBLISHED_JOB, dict(releases), job_id=f"activity-published-{key}", unique=True,
            result_ttl=ACTIVITY_RESULT_TTL, failure_ttl=ACTIVITY_FAILURE_TTL,
            description=f"warm activity summaries for releases {releases}")
    except DuplicateJobError:
        pass  # the same releases were announced twice (a re-run that found its batch published)


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
