"""The worker process: an RQ worker with RQ's scheduler (retry backoff), plus the periodic sweep.

It uses `SimpleWorker`, which runs each job in the worker process itself: a crash
takes the worker down with the job, and recovery is the same in every case (lock
expiry, then the sweep). Forking a horse per job would only add database
connections shared across `fork`.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading

from rq import SimpleWorker

from appeals import db
from workers import jobs, queues

log = logging.getLogger("appeals.worker")

_fork_guard_installed = False


def _after_fork_in_child() -> None:
    # RQ forks its scheduler from the worker. The child must not use (or, on exit, close)
    # the parent's pooled database connections, and must not outlive a parent killed by -9.
    for engine in list(db._engines.values()):
        engine.dispose(close=False)
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


def _sweep_forever(stop: threading.Event, every: int) -> None:
    while not stop.wait(every):
        try:
            jobs.sweep()
        except Exception:  # noqa: BLE001 - a failed sweep (database or Redis away) is retried next time
            log.exception("sweep failed")


def run(burst: bool = False, name: str | None = None) -> bool:
    """Run the worker until stopped (SIGINT/SIGTERM), or with `burst` until nothing is queued or due.

    Sweeps once first, so corrections whose jobs Redis lost are queued before the work
    starts. Returns True when any job was processed.
    """
    tuning = queues.Tuning.from_env()
    jobs.ensure_bootstrapped()
    install_fork_guard()
    connection = queues.connect()
    try:
        jobs.sweep()
    except Exception:  # noqa: BLE001 - start anyway; the periodic sweep tries again
        log.exception("initial sweep failed")
    stop = threading.Event()
    sweeper = None
    if not burst:
        sweeper = threading.Thread(target=_sweep_forever, args=(stop, tuning.sweep_seconds),
                                   name="sweep", daemon=True)
        sweeper.start()
    worker = SimpleWorker(
        [queues.corrections_queue(connection), queues.files_queue(connection)],
        connection=connection,
        name=name or f"appeals-{socket.gethostname()}-{os.getpid()}",
    )
    try:
        return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    finally:
        stop.set()
        if sweeper is not None:
            sweeper.join(timeout=5)
        db.session.remove()
