"""Recovery within one sweep period: jobs a dead worker had taken (RQ's intermediate list, `started`), kill -9
at random moments, and a worker that survives Redis being killed and restarted empty."""

from __future__ import annotations

import multiprocessing
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from rq import SimpleWorker
from sqlalchemy import select

from appeals import db, runtime
from appeals.models import Appeal, AppealEvent, Correction
from tests.conftest import users_of
from tests.pipeline.conftest import ENTRY, current_versions
from workers import jobs, queues


def _job_id(appeal_id: int) -> str:
    db.session.remove()
    cid = db.session.scalar(select(Correction.id).where(Correction.appeal_id == appeal_id))
    return queues.job_id_for(cid)


def test_a_job_left_in_rqs_intermediate_list_is_re_enqueued_by_the_next_sweep(
        corpus_account, approve, confirm, drain, fast):
    """A worker died between RQ's BLMOVE and starting the job: the job is `queued`, but in no queue."""
    appeal_id = confirm(approve(corpus_account, "remove")).id
    job_id = _job_id(appeal_id)
    conn = queues.connect()
    queue = queues.corrections_queue(conn)
    # What a worker's dequeue does before it dies: the job moves to the intermediate list.
    assert conn.lmove(queue.key, queue.intermediate_queue_key).decode() == job_id
    assert queue.job_ids == []

    assert jobs.sweep()["enqueued"] == 1
    assert queue.job_ids == [job_id]
    assert conn.lrange(queue.intermediate_queue_key, 0, -1) == []
    drain(sweep=False)
    db.session.remove()
    assert db.session.get(Appeal, appeal_id).status == "corrected"


def _started_by(worker: SimpleWorker):
    # The steps RQ's worker takes before it runs a job: dequeue, then mark the job started.
    job, queue = worker.dequeue_job_and_maintain_ttl(timeout=1)
    worker.prepare_execution(job)
    worker.prepare_job_execution(job, remove_from_intermediate_queue=True)
    return job


def test_a_job_started_by_a_worker_without_heartbeat_is_replaced(corpus_account, approve, confirm, drain, fast):
    """A worker died after starting the job (before taking the run): its job is replaced at the next sweep."""
    appeal_id = confirm(approve(corpus_account, "rehash")).id
    conn = queues.connect()
    job = _started_by(SimpleWorker([queues.corrections_queue(conn)], connection=conn, name="dead-worker"))
    assert job.get_status(refresh=True) == "started"

    assert jobs.sweep()["enqueued"] == 1
    assert queues.corrections_queue(conn).job_ids == [job.id]
    drain(sweep=False)
    db.session.remove()
    assert db.session.get(Appeal, appeal_id).status == "corrected"


def test_a_job_started_by_a_live_worker_is_left_alone(corpus_account, approve, confirm, fast):
    """The same state with the worker's heartbeat present is a run in progress: no second job."""
    confirm(approve(corpus_account, "remove"))
    conn = queues.connect()
    job = _started_by(SimpleWorker([queues.corrections_queue(conn)], connection=conn, name="live-worker"))
    queues.beat(conn, "live-worker", 30)

    assert jobs.sweep()["enqueued"] == 0
    assert queues.corrections_queue(conn).job_ids == []
    assert job.get_status(refresh=True) == "started"


# --- subprocess workers ------------------------------------------------------------------------


def _spawn_worker(env: dict, name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", ENTRY, "worker", "--name", name], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_alive(conn: redis.Redis, name: str, proc: subprocess.Popen, timeout: float = 60) -> float:
    """Wait for the worker's heartbeat; returns the moment it appeared."""
    deadline = time.monotonic() + timeout
    while not queues.worker_alive(conn, name):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "the worker never started"
        time.sleep(0.05)
    return time.monotonic()


def _wait_status(appeal_id: int, status: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        db.session.remove()
        if db.session.get(Appeal, appeal_id).status == status:
            return
        assert time.monotonic() < deadline, f"appeal {appeal_id} not {status} within {timeout:.1f} s"
        time.sleep(0.1)


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""


def _accounts_with_footprint(corpus, make_account, count: int):
    engine = runtime.engine()
    accounts = []
    for dataset in corpus:
        for row in sorted(users_of(dataset), key=lambda r: r["userid"]):
            if len(accounts) == count:
                return accounts
            if any(e.authored_tweets or e.in_users_file for e in engine.footprint(row["userid"])):
                accounts.append(make_account(row["userid"], row["user_screen_name"],
                                             email=f"{row['user_screen_name']}@example.org"))
    return accounts


KILLS = 20
RUN_ALLOWANCE = 20.0  # the run itself (import, rewrite, verify, publish) on a busy 2-core machine


@pytest.mark.slow
def test_kill_9_at_random_moments_is_recovered_within_one_sweep_after_a_worker_is_back(
        corpus, make_account, approve, confirm, worker_env, fast, redis_url):
    """20 times: a worker is killed -9 at a random moment of a correction; a new worker finishes it exactly once,
    within one sweep period (plus the dead worker's lock expiry and the run itself) of its start."""
    settings = runtime.settings()
    conn = redis.Redis.from_url(redis_url)
    rng = random.Random(1414)
    accounts = _accounts_with_footprint(corpus, make_account, KILLS)
    assert len(accounts) == KILLS
    bound = settings.sweep_seconds + settings.lock_seconds + RUN_ALLOWANCE
    worker = _spawn_worker(worker_env, "worker-0")
    _wait_alive(conn, "worker-0", worker)
    try:
        for i, account in enumerate(accounts):
            touched = {e.dataset for e in runtime.engine().footprint(account.user_id)}
            before = current_versions()
            appeal_id = confirm(approve(account, rng.choice(["remove", "rehash"]))).id
            db.session.remove()
            time.sleep(rng.uniform(0, 1.5))  # anywhere from the dequeue to after the publish
            worker.kill()
            worker.wait()

            # The worker that is back is the next round's victim.
            worker = _spawn_worker(worker_env, f"worker-{i + 1}")
            started = _wait_alive(conn, f"worker-{i + 1}", worker)
            _wait_status(appeal_id, "corrected", bound)
            elapsed = time.monotonic() - started
            assert elapsed <= bound, f"kill {i}: corrected {elapsed:.1f} s after the worker was back"

            db.session.remove()
            correction = db.session.scalar(select(Correction).where(Correction.appeal_id == appeal_id))
            assert correction.status == "done"
            expected = {name: before[name] + 1 for name in touched}
            assert correction.releases == expected, f"kill {i}"
            assert current_versions() == {**before, **expected}, f"kill {i}: not exactly one release"
            events = db.session.scalars(select(AppealEvent.status_to)
                                        .where(AppealEvent.appeal_id == appeal_id)).all()
            assert events.count("corrected") == 1
    finally:
        err = _stop(worker)
    assert worker.returncode == 0, err[-3000:]
    for name in current_versions():
        assert runtime.engine().verify(name).ok


# --- Redis killed and restarted empty -------------------------------------------------------------


class OwnRedis:
    """A redis-server process this test owns, on a unix socket that survives restarts."""

    def __init__(self, directory: Path):
        from workers.connection import redis_server_binary

        self.executable = redis_server_binary()
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.socket.unlink(missing_ok=True)
        self.proc = subprocess.Popen([self.executable, "--port", "0", "--unixsocket", str(self.socket),
                                      "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.slow
def test_redis_killed_and_restarted_empty_mid_run_the_same_worker_finishes(
        corpus_account, approve, confirm, worker_env, fast, tmp_path):
    """The worker survives the outage (no "unhandled exception, quitting"), carries on and publishes once."""
    own = OwnRedis(tmp_path / "r")
    own.directory.mkdir()
    own.start()
    runtime.bootstrap(replace(runtime.settings(), redis_url=own.url))
    env = {**worker_env, "APPEALS_REDIS_URL": own.url, "APPEALS_FAULT_PAUSE_AT": "mid_rewrite:3"}
    worker = _spawn_worker(env, "survivor")
    try:
        _wait_alive(redis.Redis.from_url(own.url), "survivor", worker)
        touched = {e.dataset for e in runtime.engine().footprint(corpus_account.user_id)}
        before = current_versions()
        appeal_id = confirm(approve(corpus_account, "remove")).id
        _wait_status(appeal_id, "correcting", 30)
        own.kill()  # mid-run: the worker is paused inside the rewrite
        time.sleep(2)
        own.start()  # empty: no jobs, no lock, no fence counter
        _wait_status(appeal_id, "corrected", 60)
        assert worker.poll() is None, "the worker process exited"
        db.session.remove()
        correction = db.session.scalar(select(Correction).where(Correction.appeal_id == appeal_id))
        assert correction.releases == {name: before[name] + 1 for name in touched}
        assert current_versions() == {**before, **correction.releases}
        time.sleep(2)  # a sweep or two after the outage: still alive, nothing published twice
        assert worker.poll() is None
        assert current_versions() == {**before, **correction.releases}
    finally:
        err = _stop(worker)
        own.kill()
    assert "unhandled exception" not in err, err[-3000:]
    assert "while Redis is away" in err, "the outage did not happen during the run"
    assert worker.returncode == 0, err[-3000:]


def test_a_worker_stopped_while_it_starts_exits_cleanly(worker_env, redis_url):
    """SIGTERM from the first heartbeat on (the first sweep, RQ's start-up, RQ's loop) ends the worker
    with status 0: a supervisor's stop at any moment is a clean stop, never a death by signal."""
    conn = redis.Redis.from_url(redis_url)
    for i, pause in enumerate((0.0, 0.05, 0.2, 1.0)):
        worker = _spawn_worker(worker_env, f"stopper-{i}")
        _wait_alive(conn, f"stopper-{i}", worker)
        time.sleep(pause)
        err = _stop(worker)
        assert worker.returncode == 0, (pause, err[-3000:])


def _ignore_stop_requests() -> None:
    # What a scheduler is when the stop signal reached it inside the fork hooks: Python dropped it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(0.05)


def _stop_on_request() -> None:
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    while not stopped:
        time.sleep(0.05)


@pytest.mark.parametrize("target, exitcode", [(_ignore_stop_requests, -signal.SIGKILL), (_stop_on_request, 0)])
def test_stopping_the_scheduler_never_waits_for_ever(redis_url, monkeypatch, target, exitcode):
    """The worker asks its scheduler process to stop, waits one scheduler interval and a grace,
    then kills it: a scheduler that missed the request cannot keep the worker from exiting."""
    from rq.scheduler import RQScheduler

    from workers import runner

    monkeypatch.setattr(runner, "SCHEDULER_STOP_GRACE_SECONDS", 0.5)
    conn = redis.Redis.from_url(redis_url)
    worker = runner.ResilientWorker([queues.corrections_queue(conn)], connection=conn, name="scheduler-stopper")
    worker.scheduler = RQScheduler(worker.queues, connection=conn)
    worker.scheduler._process = multiprocessing.get_context("fork").Process(target=target)
    worker.scheduler._process.start()
    time.sleep(0.3)  # past the child's own set-up: the request is sent to the loop

    worker.stop_scheduler()
    assert worker.scheduler._process.exitcode == exitcode
    worker.stop_scheduler()  # a second stop (RQ's teardown, then the runner's) is a no-op


def test_a_stop_that_arrives_while_the_scheduler_forks_still_stops_the_worker(worker_env, redis_url):
    """SIGTERM handled inside the fork's hooks, where Python drops any exception: the worker still exits 0."""
    from rq.scheduler import RQScheduler

    # RQ forks a scheduler only when it takes the scheduler locks: free any a killed worker left behind.
    conn = redis.Redis.from_url(redis_url)
    for key in conn.scan_iter(RQScheduler.get_locking_key("*")):
        conn.delete(key)
    stop_during_fork = ("import os, signal;"
                        "os.register_at_fork(after_in_parent=lambda: os.kill(os.getpid(), signal.SIGTERM));")
    worker = subprocess.Popen([sys.executable, "-c", stop_during_fork + ENTRY, "worker", "--name", "fork-stopped"],
                              env=worker_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, err = worker.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        _, err = worker.communicate()
    assert "Acquired scheduler lock" in err, "the scheduler was never forked"
    assert worker.returncode == 0, err[-3000:]
