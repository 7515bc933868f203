"""Queue names, result TTLs, the retry policy, job liveness and the enqueue helpers, in one place.

Jobs run without a Flask app context on purpose (they bootstrap `appeals.runtime`
and use plain SQLAlchemy), so Flask-RQ was considered and not used: it only adds
an app-bound queue we would have to work around. Every call passes `connection=`.

Job ids are deterministic, `correction-<id>`, and enqueued with `unique=True`: a
double confirmation, a sweep and a dispatch racing each other give one job.

A job counts as live only if something will still run it: it sits in the queue, it is
scheduled or deferred, or it was started by a worker whose heartbeat key is still there.
A job a dead worker had taken (RQ's intermediate list, or `started` with no heartbeat)
is replaced at once, so the sweep recovers it within one sweep period instead of
waiting for RQ's ten-minute maintenance.

File and commit jobs (the `files` queue) are recovered by RQ's own mechanism, made fast: the
worker keeps their StartedJobRegistry entry alive with a heartbeat as short as its own
(`file_heartbeat_ttl`), so RQ's abandoned-job cleanup, which the sweep and the waiting
coordinator run, retries a dead worker's job within a sweep period rather than after its
timeout + 60 s. Running such a job twice is harmless: file jobs upload under content
addresses, and a commit job publishes its batch once.
"""

from __future__ import annotations

import logging
import math
import time

import redis
from rq import Queue, Retry
from rq.callbacks import Callback
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from config import Settings
from workers import handoff
from workers.handoff import HEARTBEAT_PREFIX

log = logging.getLogger("appeals.queues")

CORRECTIONS_QUEUE = "corrections"
FILES_QUEUE = "files"  # issue 17: one job per file of a fanned-out correction, then its commit job
# The job of an operator's batch handed to a running worker (`appeals corrections apply`), by name: the
# command enqueues it without importing `workers.jobs` (SQLAlchemy, the engine).
OPERATOR_JOB = "workers.jobs.operator_job"
QUEUE_NAMES = (CORRECTIONS_QUEUE, FILES_QUEUE)

RUN_JOB = "workers.jobs.run_corrections"
ON_FAILURE = "workers.jobs.on_run_failure"

RESULT_TTL = 24 * 3600  # finished jobs stay visible a day
FAILURE_TTL = 7 * 24 * 3600  # failed ones a week, for the people who look into them

# Will still run without anyone's help (RQ's scheduler moves these to the queue).
WAITING_STATUSES = frozenset({JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.CREATED,
                              JobStatus.READY_TO_ENQUEUE})

# A live worker moves a job it dequeued into `started` within milliseconds; a job still
# between the two after this long belongs to a worker that died there.
HANDOFF_GRACE_SECONDS = 0.5

FILES_RECOVERY_LOCK = "appeals:files-recovery"  # one recoverer at a time, so no job is retried twice


def retry_policy(settings: Settings) -> Retry:
    """Retry transient failures once per interval of APPEALS_RETRY_INTERVALS, with that backoff."""
    return Retry(max=len(settings.retry_intervals), interval=list(settings.retry_intervals))


def heartbeat_ttl(settings: Settings) -> float:
    """How long a worker's heartbeat lasts: shorter than a sweep period, so a dead worker is seen by the next sweep."""
    return float(max(2, min(settings.sweep_seconds, 15)))


def file_heartbeat_ttl(settings: Settings) -> int:
    """Seconds a running file or commit job's RQ heartbeat (its StartedJobRegistry entry) lasts unrefreshed."""
    return math.ceil(heartbeat_ttl(settings))


def beat(connection: redis.Redis, worker_name: str, ttl: float) -> None:
    """Record that `worker_name` is alive for the next `ttl` seconds."""
    connection.set(HEARTBEAT_PREFIX + worker_name, "1", px=int(ttl * 1000))


def worker_alive(connection: redis.Redis, worker_name: str | None) -> bool:
    """True while `worker_name`'s heartbeat has not expired."""
    return bool(worker_name) and bool(connection.exists(HEARTBEAT_PREFIX + worker_name))


def enqueue_operator(connection: redis.Redis, payload: bytes, settings: Settings) -> bool:
    """The RQ job of an operator's request (`workers.handoff`); False when that request's job exists already.

    One retry, which only a worker's death uses (the job returns its errors): RQ's abandoned-job
    cleanup runs the batch again on a live worker.
    """
    request = handoff.parse_request(payload)
    try:
        corrections_queue(connection).enqueue(
            OPERATOR_JOB, request["items"], request["reason"], request["actor"], request_id=request["id"],
            job_id=handoff.job_id(request["id"]), unique=True, job_timeout=settings.correction_timeout,
            result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL, retry=Retry(max=1),
            description=f"operator correction of {', '.join(str(i[0]) for i in request['items'])}")
    except DuplicateJobError:
        return False
    return True


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


def _in_queue(connection: redis.Redis, queue: Queue, job_id: str) -> bool:
    return connection.lpos(queue.key, job_id) is not None


def job_is_live(connection: redis.Redis, job: Job, replace_started: bool = False) -> bool:
    """True when `job` will still run (or is running) without anyone's help; see the module's docstring."""
    status = job.get_status(refresh=True)
    if status in WAITING_STATUSES:
        return True
    if status == JobStatus.STARTED:
        return not replace_started and worker_alive(connection, job.worker_name)
    if status != JobStatus.QUEUED:
        return False  # finished, failed, stopped or canceled: a new job is needed
    queue = corrections_queue(connection)
    if _in_queue(connection, queue, job.id):
        return True
    # Dequeued but not started: a worker is handing it over right now, or died doing so.
    time.sleep(HANDOFF_GRACE_SECONDS)
    status = job.get_status(refresh=True)
    if status == JobStatus.STARTED:
        return worker_alive(connection, job.worker_name)
    return status == JobStatus.QUEUED and _in_queue(connection, queue, job.id)


def _discard(connection: redis.Redis, job: Job) -> None:
    """Remove every trace of a dead job, RQ's intermediate list and started registry included."""
    queue = corrections_queue(connection)
    connection.lrem(queue.intermediate_queue_key, 0, job.id)
    queue.started_job_registry.remove_executions(job)
    job.delete()


def enqueue_correction(connection: redis.Redis, correction_id: int, replace_started: bool = False) -> bool:
    """Make sure correction `correction_id` has a live job; True when a job was enqueued now.

    A finished, failed or dead job of the same id is replaced. A `started` one whose worker
    is alive is kept unless `replace_started`: the sweep says so when the run it belongs
    to is known to be dead.
    """
    from appeals import runtime

    job_id = job_id_for(correction_id)
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        job = None
    if job is not None:
        if job_is_live(connection, job, replace_started):
            return False
        log.warning("job %s is %s with no live worker; replacing it", job_id, job.get_status(refresh=False))
        _discard(connection, job)
    settings = runtime.settings()
    try:
        corrections_queue(connection).enqueue(
            RUN_JOB,
            correction_id,
            job_id=job_id,
            unique=True,
            retry=retry_policy(settings),
            on_failure=Callback(ON_FAILURE),
            job_timeout=settings.correction_timeout,
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


def recover_files(connection: redis.Redis) -> int:
    """Hand the file and commit jobs of dead workers back to RQ; returns how many were found.

    A started job whose heartbeat lapsed goes through RQ's abandoned-job cleanup (retried while
    it has retries left, else failed, which fails its run). A job a worker dequeued and died
    before starting (RQ's intermediate list) goes back to the front of its queue.
    """
    lock = connection.lock(FILES_RECOVERY_LOCK, timeout=60, blocking=False)
    if not lock.acquire():
        return 0  # someone else is recovering right now
    try:
        queue = files_queue(connection)
        registry = queue.started_job_registry
        now = time.time()
        found = len(registry.get_expired_job_ids(now))
        registry.cleanup(timestamp=now)
        found += _requeue_stuck_handoffs(connection, queue)
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            pass  # expired meanwhile: nothing to give back
    if found:
        log.warning("recovered %d file/commit job(s) of dead workers", found)
    return found


def _handoffs(connection: redis.Redis, queue: Queue) -> set[str]:
    """Ids in the intermediate list, still `queued`, in no queue: dequeued by a worker that has not started them."""
    ids = {i.decode() for i in connection.lrange(queue.intermediate_queue_key, 0, -1)}
    stuck = set()
    # A live execution in the started registry (its heartbeat not lapsed) is a worker starting the job.
    running = set(queue.started_job_registry.get_job_ids(cleanup=False)) if ids else set()
    for job_id in ids - running:
        try:
            status = Job.fetch(job_id, connection=connection).get_status(refresh=True)
        except NoSuchJobError:
            connection.lrem(queue.intermediate_queue_key, 0, job_id)
            continue
        if status == JobStatus.QUEUED and not _in_queue(connection, queue, job_id):
            stuck.add(job_id)
    return stuck


def _requeue_stuck_handoffs(connection: redis.Redis, queue: Queue) -> int:
    stuck = _handoffs(connection, queue)
    if not stuck:
        return 0
    time.sleep(HANDOFF_GRACE_SECONDS)  # a live worker starts what it dequeued within milliseconds
    moved = 0
    for job_id in stuck & _handoffs(connection, queue):
        if connection.lrem(queue.intermediate_queue_key, 0, job_id):
            queue.push_job_id(job_id, at_front=True)
            moved += 1
    return moved
