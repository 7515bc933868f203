"""Queue names, timeouts, result TTLs, the retry policy and the enqueue helpers, in one place.

Jobs run without a Flask app context on purpose (they bootstrap `appeals.runtime`
and use plain SQLAlchemy), so Flask-RQ was considered and not used: it only adds
an app-bound queue we would have to work around. Every call passes `connection=`.

Job ids are deterministic, `correction-<id>`, and enqueued with `unique=True`: a
double confirmation, a sweep and a dispatch racing each other give one job.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import redis
from rq import Queue, Retry
from rq.callbacks import Callback
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from config import ConfigError, _int

log = logging.getLogger("appeals.queues")

CORRECTIONS_QUEUE = "corrections"
FILES_QUEUE = "files"  # issue 17: one job per file of a fanned-out correction, then its commit job
QUEUE_NAMES = (CORRECTIONS_QUEUE, FILES_QUEUE)

RUN_JOB = "workers.jobs.run_corrections"
ON_FAILURE = "workers.jobs.on_run_failure"

RESULT_TTL = 24 * 3600  # finished jobs stay visible a day
FAILURE_TTL = 7 * 24 * 3600  # failed ones a week, for the people who look into them

# A job in one of these states will still run (or is running): no need for another.
LIVE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED,
                           JobStatus.CREATED, JobStatus.READY_TO_ENQUEUE})


@dataclass(frozen=True)
class Tuning:
    """Worker timings, from the environment so tests (and big installations) can change them."""

    sweep_seconds: int  # APPEALS_SWEEP_SECONDS: how often the worker sweeps
    lock_seconds: int  # APPEALS_LOCK_SECONDS: the dataset lock's expiry, renewed while held
    lock_wait_seconds: int  # APPEALS_LOCK_WAIT_SECONDS: how long a run waits for a busy lock
    retry_intervals: tuple[int, ...]  # APPEALS_RETRY_INTERVALS: backoff between retries, e.g. "10,30,60"
    job_timeout: int  # APPEALS_CORRECTION_TIMEOUT: a run's hard time limit

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Tuning":
        """Read the timings from `env` (default os.environ)."""
        env = dict(os.environ if env is None else env)
        raw = env.get("APPEALS_RETRY_INTERVALS") or "10,30,60"
        try:
            intervals = tuple(int(x) for x in raw.split(","))
        except ValueError:
            raise ConfigError(f"APPEALS_RETRY_INTERVALS must be comma-separated seconds, got {raw!r}") from None
        if not intervals or min(intervals) < 0:
            raise ConfigError(f"APPEALS_RETRY_INTERVALS must be non-negative seconds, got {raw!r}")
        tuning = cls(
            sweep_seconds=_int(env, "APPEALS_SWEEP_SECONDS", 30),
            lock_seconds=_int(env, "APPEALS_LOCK_SECONDS", 60),
            lock_wait_seconds=_int(env, "APPEALS_LOCK_WAIT_SECONDS", 10),
            retry_intervals=intervals,
            job_timeout=_int(env, "APPEALS_CORRECTION_TIMEOUT", 4 * 3600),
        )
        for name in ("sweep_seconds", "lock_seconds", "job_timeout"):
            if getattr(tuning, name) < 1:
                raise ConfigError(f"{name} must be at least 1 second")
        return tuning

    @property
    def retry(self) -> Retry:
        """Retry transient failures once per interval, with that backoff."""
        return Retry(max=len(self.retry_intervals), interval=list(self.retry_intervals))


def connect() -> redis.Redis:
    """A Redis client for the current settings (the embedded server when none is configured)."""
    from appeals import runtime
    from workers.connection import connect as connect_settings

    return connect_settings(runtime.settings())


def corrections_queue(connection: redis.Redis) -> Queue:
    """The queue correction runs go through."""
    return Queue(CORRECTIONS_QUEUE, connection=connection)


def files_queue(connection: redis.Redis) -> Queue:
    """The queue of per-file rewrite jobs and commit jobs (issue 17), which any worker takes."""
    return Queue(FILES_QUEUE, connection=connection)


def job_id_for(correction_id: int) -> str:
    """The deterministic RQ job id of a correction."""
    return f"correction-{int(correction_id)}"


def enqueue_correction(connection: redis.Redis, correction_id: int, replace_started: bool = False) -> bool:
    """Make sure correction `correction_id` has a live job; True when a job was enqueued now.

    A finished or failed job of the same id is replaced. A `started` one is kept unless
    `replace_started`: the sweep says so when the run it belongs to is known to be dead.
    """
    job_id = job_id_for(correction_id)
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        job = None
    if job is not None:
        status = job.get_status(refresh=False)
        if status in LIVE_STATUSES and not (status == JobStatus.STARTED and replace_started):
            return False
        job.delete()
    tuning = Tuning.from_env()
    try:
        corrections_queue(connection).enqueue(
            RUN_JOB,
            correction_id,
            job_id=job_id,
            unique=True,
            retry=tuning.retry,
            on_failure=Callback(ON_FAILURE),
            job_timeout=tuning.job_timeout,
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
            description=f"correction run for correction {correction_id}",
        )
    except DuplicateJobError:
        return False  # someone enqueued it between our look and our write: that is the job
    log.info("enqueued %s", job_id)
    return True


def ensure_jobs(correction_ids, connection: redis.Redis | None = None, replace_started=()) -> int:
    """Enqueue a job for each correction lacking a live one; returns how many were enqueued."""
    connection = connection or connect()
    replace_started = set(replace_started)
    return sum(enqueue_correction(connection, cid, cid in replace_started) for cid in correction_ids)
