"""The worker process: an RQ worker with RQ's scheduler (retry backoff), heartbeats and the periodic sweep.

It uses `SimpleWorker`, which runs each job in the worker process itself: a crash
takes the worker down with the job, and recovery is the same in every case (the
heartbeat stops, the lock expires, then the sweep replaces the job). Forking a horse
per job would only add database connections shared across `fork`. While a file or commit job
(`files` queue) runs, a thread keeps RQ's heartbeat of the job short-lived and fresh, so a worker
killed mid-file has its job retried by RQ's abandoned-job cleanup within a sweep period.

A Redis outage does not end the process: the worker waits for Redis with backoff and
carries on (a job that was running keeps running; only RQ's own bookkeeping of it may
be lost, and the sweep covers that).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import sys
import threading
import time

import redis
from rq import SimpleWorker

from appeals import db
from workers import dispatch, handoff, jobs, queues

log = logging.getLogger("appeals.worker")

REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
MAX_BACKOFF_SECONDS = 30.0
SCHEDULER_STOP_GRACE_SECONDS = 5.0  # beyond its one-interval sleep, the scheduler's stop takes one Redis round

_fork_guard_installed = False


def _after_fork_in_child() -> None:
    # RQ forks its scheduler from the worker. The child must not use (or, on exit, close)
    # the parent's pooled database connections, and must not outlive a parent killed by -9.
    # Until RQ's scheduler installs its own handlers, a stop ends it by the default action:
    # the parent's handler (inherited) would raise where Python drops the exception.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    db.forget_engines_after_fork()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass


def install_fork_guard() -> None:
    """Make forked children (RQ's scheduler) safe for the database and tied to this process."""
    global _fork_guard_installed
    if not _fork_guard_installed:
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_guard_installed = True


def wait_for_redis(connection: redis.Redis, stop: threading.Event | None = None) -> None:
    """Block until Redis answers a PING, retrying with exponential backoff (capped)."""
    delay = 0.5
    while stop is None or not stop.is_set():
        try:
            connection.ping()
            return
        except REDIS_DOWN as exc:
            log.warning("Redis unreachable (%s); retrying in %.1f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)


def _surviving_redis(method):
    """Wrap a worker method: when Redis is away, wait for it with backoff instead of letting RQ quit."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        while True:
            try:
                return method(self, *args, **kwargs)
            except REDIS_DOWN as exc:
                log.warning("Redis went away during %s: %s", method.__name__, exc)
                wait_for_redis(self.connection)
                if method.__name__ == "execute_job":
                    return None  # never run a job twice here; the sweep re-enqueues what is unfinished

    return wrapper


def _keep_job_alive(worker: SimpleWorker, job, execution, stop: threading.Event, every: float) -> None:
    # Refreshes the worker's, the job's and the execution's RQ heartbeats while the job runs in the
    # main thread; when the process dies they lapse within `file_heartbeat_ttl` and RQ's cleanup retries it.
    while not stop.wait(every):
        try:
            worker.maintain_heartbeats(job, execution)
        except redis.RedisError as exc:
            log.warning("job heartbeat failed: %s", exc)


def _short_heartbeat(job) -> bool:
    # An operator's batch (`appeals corrections apply` handed to this worker) is kept alive like a file
    # job, so that if this worker dies RQ's abandoned-job cleanup retries it soon, not after its timeout.
    return job.origin == queues.FILES_QUEUE or job.func_name == queues.OPERATOR_JOB


def warm_up() -> None:
    """Load now what a correction loads on first use (the scanning stack, the ORM's mappers, the engine and
    its index, the downloaders' notices), so the first batch a running worker is handed (an operator
    waiting at the command line) costs what every later one does."""
    import hyperscan  # noqa: F401 - the engine imports these where it scans, so that commands start without
    import numpy  # noqa: F401 - them; a worker has time to load them before anyone waits
    from sqlalchemy.orm import configure_mappers

    from appeals import models, runtime  # noqa: F401 - the mapped classes, for configure_mappers
    from appeals.services import download_notices  # noqa: F401

    configure_mappers()
    runtime.engine()


class ResilientWorker(SimpleWorker):
    """RQ's SimpleWorker that waits out Redis outages instead of quitting ("unhandled exception"),
    and keeps a short heartbeat on file and commit jobs while they run (issue 17).

    A SimpleWorker sends no heartbeat during a job, so RQ gives each one a registry entry that
    lasts its whole timeout + 60 s: a job whose worker was killed would wait that long.
    """

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
        """A short TTL for `files` jobs and operators' batches (a thread refreshes it); RQ's default
        (timeout + 60 s) for the rest."""
        if _short_heartbeat(job):
            return queues.file_heartbeat_ttl(jobs.ensure_bootstrapped())
        return super().get_heartbeat_ttl(job, working_time)

    def execute_job(self, job, queue) -> None:
        """Run the job here; a `files` job or an operator's batch with its heartbeat kept by a thread."""
        if not _short_heartbeat(job):
            return SimpleWorker.execute_job(self, job, queue)
        from rq.worker import WorkerStatus

        execution = self.prepare_execution(job)
        stop = threading.Event()
        beater = threading.Thread(target=_keep_job_alive, name="job-heartbeat", daemon=True,
                                  args=(self, job, execution, stop, self.get_heartbeat_ttl(job) / 4))
        beater.start()
        try:
            self.perform_job(job, queue, execution)
        finally:
            stop.set()
            beater.join()
        self.set_state(WorkerStatus.IDLE)
        return None

    execute_job = _surviving_redis(execute_job)
    heartbeat = _surviving_redis(SimpleWorker.heartbeat)
    check_for_suspension = _surviving_redis(SimpleWorker.check_for_suspension)
    run_maintenance_tasks = _surviving_redis(SimpleWorker.run_maintenance_tasks)

    def _start_scheduler(self, *args, **kwargs) -> None:
        """RQ's start of the scheduler process, with an early stop request held back during the fork."""
        _EarlyStop.forking = True
        try:
            super()._start_scheduler(*args, **kwargs)
        finally:
            _EarlyStop.forking = False
        if _EarlyStop.asked:
            raise SystemExit(0)

    def _install_signal_handlers(self) -> None:
        """RQ's handlers; a stop asked before them (and whose exception Python dropped) stops the loop."""
        super()._install_signal_handlers()
        if _EarlyStop.asked:
            self.handle_warm_shutdown_request()

    def stop_scheduler(self) -> None:
        """RQ's stop of the scheduler process, with a bounded wait: then it is killed.

        A SIGTERM that reaches the freshly forked scheduler while it is still running the
        fork hooks is dropped by Python (exceptions there are ignored), so RQ's unbounded
        `join()` would wait for it forever and the worker would never exit.
        """
        process = self.scheduler._process if self.scheduler is not None else None
        if process is None or process.pid is None or process.exitcode is not None:
            return
        process.terminate()
        process.join(self.scheduler.interval + SCHEDULER_STOP_GRACE_SECONDS)
        if process.exitcode is None:
            log.warning("the scheduler process %s did not stop: killing it", process.pid)
            process.kill()
            process.join()

    def handle_warm_shutdown_request(self):
        """Remember that we were asked to stop, so the runner does not start over, and so RQ's loop
        ends at its next turn even if the exception its handler raises is dropped."""
        self.stop_asked = True
        self._stop_requested = True
        super().handle_warm_shutdown_request()


def _sweep_forever(stop: threading.Event, every: int) -> None:
    while not stop.wait(every):
        try:
            jobs.sweep()
        except Exception:  # noqa: BLE001 - a failed sweep (database or Redis away) is retried next time
            log.exception("sweep failed")


def _beat_forever(stop: threading.Event, connection: redis.Redis, name: str, ttl: float) -> None:
    while True:
        try:
            queues.beat(connection, name, ttl)
        except redis.RedisError as exc:
            log.warning("heartbeat failed: %s", exc)
        if stop.wait(ttl / 4):
            return


def _intake_forever(stop: threading.Event, name: str, settings) -> None:
    # Operators' requests (workers.handoff) become RQ jobs here, one at a time, on a connection of this
    # thread's own: BLMOVE holds it while it waits. A request this worker has taken is dropped from its
    # intake only once its job exists; on a stop, the worker stops taking requests at once and what its
    # intake still holds goes back to the others.
    connection = queues.connect()
    try:
        while not stop.is_set():
            try:
                payload = handoff.take(connection, name, timeout=1)
                if payload is None:
                    continue
                try:
                    queues.enqueue_operator(connection, payload, settings)
                except handoff.BadRequest as exc:
                    log.warning("dropped a hand-off request that is not one (%s): %r", exc, payload[:200])
                handoff.taken(connection, name, payload)
            except REDIS_DOWN as exc:
                log.warning("operator intake: Redis went away (%s)", exc)
                wait_for_redis(connection, stop)
            except Exception:  # noqa: BLE001 - the intake must outlive any one request
                log.exception("operator intake failed; the request goes back to be tried again")
                handoff.give_back(connection, name)
                stop.wait(1)
        handoff.leave(connection, name)
    except redis.RedisError:
        pass  # Redis is away as this worker stops: the sweep of a live worker gives the requests back
    finally:
        connection.close()


class _EarlyStop:
    """A stop request (SIGTERM/SIGINT) that arrives before RQ installs its own handlers.

    RQ installs its handlers (warm shutdown after the current job) when its loop starts. Before
    that (the first sweep, RQ's own start-up) a stop ends the process at once and cleanly: the
    sweep's transaction rolls back and is done again by the next worker. Without this, SIGTERM in
    that window killed the process by the default action (exit -15).

    The stop is an exception raised by the signal handler, and Python drops exceptions raised in
    fork hooks and finalizers: one raised in logging's fork hook even left logging's lock held. So
    no exception is raised while RQ forks its scheduler (the stop waits for the fork to end), and a
    request whose exception was dropped elsewhere is still honoured when RQ's loop starts.
    """

    asked = False
    forking = False

    @classmethod
    def install(cls) -> None:
        """Handle SIGTERM and SIGINT here (a fresh request: none is pending when this runs)."""
        cls.asked = False
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, cls.handle)

    @classmethod
    def handle(cls, signum, frame) -> None:
        """Stop now (SystemExit(0)), or once RQ's fork of the scheduler is over."""
        cls.asked = True
        if not cls.forking:
            raise SystemExit(0)


def run(burst: bool = False, name: str | None = None) -> bool:
    """Run the worker until stopped (SIGINT/SIGTERM), or with `burst` until nothing is queued or due.

    Sweeps once first, so corrections whose jobs Redis lost are queued before the work
    starts. Returns True when any job was processed.
    """
    settings = jobs.ensure_bootstrapped()
    install_fork_guard()
    _EarlyStop.install()
    try:
        warm_up()
    except Exception:  # noqa: BLE001 - only a head start; the first job loads what it needs anyway
        log.exception("warming up failed")
    connection = queues.connect()
    name = name or f"appeals-{socket.gethostname()}-{os.getpid()}"
    stop = threading.Event()
    # The heartbeat goes first: the initial sweep must not take our own jobs for a dead worker's.
    beater = threading.Thread(target=_beat_forever, args=(stop, connection, name, queues.heartbeat_ttl(settings)),
                              name="heartbeat", daemon=True)
    beater.start()
    try:
        jobs.sweep()
    except Exception:  # noqa: BLE001 - start anyway; the periodic sweep tries again
        log.exception("initial sweep failed")
    intake = sweeper = None
    if not burst:  # a burst worker takes no operator's request: it may be gone before the job would run
        intake = threading.Thread(target=_intake_forever, args=(stop, name, settings), name="operator-intake",
                                  daemon=True)
        intake.start()
        sweeper = threading.Thread(target=_sweep_forever, args=(stop, settings.sweep_seconds),
                                   name="sweep", daemon=True)
        sweeper.start()
    worked = False
    worker = None
    try:
        while True:
            _EarlyStop.install()  # again after RQ's loop ended: its handlers belong to the worker that stopped
            # Mail first: a delivery takes milliseconds and must not wait behind a long correction run.
            # Activity warm-ups last: they only save a reviewer's first view some seconds.
            worker = ResilientWorker([dispatch.mail_queue(connection), queues.corrections_queue(connection),
                                      queues.files_queue(connection), dispatch.activity_queue(connection)],
                                     connection=connection, name=name)
            worker.stop_asked = False
            try:
                worked = worker.work(burst=burst, with_scheduler=True, logging_level="INFO") or worked
            except REDIS_DOWN:
                log.warning("Redis went away while the worker was starting or stopping")
            if burst or worker.stop_asked:
                return worked
            # RQ's loop ended on an error it does not survive by itself: wait for Redis, start over.
            wait_for_redis(connection)
    finally:
        # A stop during RQ's own start-up (after it spawned its scheduler, before its signal handlers)
        # leaves the scheduler process running, and the interpreter's exit waits for it: stop it here.
        if worker is not None:
            try:
                worker.stop_scheduler()
            except Exception:  # noqa: BLE001 - exiting anyway
                log.exception("stopping the scheduler failed")
        stop.set()
        for thread in (intake, sweeper):
            if thread is not None:
                thread.join(timeout=5)
        beater.join(timeout=5)
        db.session.remove()
