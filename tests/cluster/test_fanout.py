"""A correction fanned out per file on the S3 store: file jobs and a commit job through real Redis."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from rq.job import JobStatus
from rq.registry import StartedJobRegistry

from appeals import runtime
from tests.conftest import users_of, work_in_process
from workers import jobs, queues
from workers.engine.errors import PublishConflict

FAST = {"APPEALS_RETRY_INTERVALS": "0,0", "APPEALS_LOCK_SECONDS": "5", "APPEALS_LOCK_WAIT_SECONDS": "2"}


@pytest.fixture
def fast(monkeypatch, s3_corpus):
    """Immediate retries and short locks, here (Settings) and in worker subprocesses (environment)."""
    from dataclasses import replace

    for k, v in FAST.items():
        monkeypatch.setenv(k, v)
    runtime.bootstrap(replace(runtime.settings(), retry_intervals=(0, 0), lock_seconds=5, lock_wait_seconds=2))


def _work_files(connection) -> None:
    """Run every queued file and commit job here, like a worker on the `files` queue (burst)."""
    work_in_process([queues.files_queue(connection)])


def _target(dataset) -> str:
    return sorted(users_of(dataset), key=lambda r: r["userid"])[0]["userid"]


def _plan(batch_id: str, uid: str):
    engine = runtime.engine()
    return engine, engine.plan_batch(batch_id, [(uid, "remove")], None)


def test_one_job_per_file_then_one_commit_publishes_once(s3_corpus, fast):
    engine, plan = _plan("fan-1", _target(s3_corpus))
    assert len(plan.tasks) >= 2  # both variants of at least one file
    connection = queues.connect()
    file_jobs, commit = jobs.enqueue_fan_out(engine, plan, connection)
    assert commit.get_status() == JobStatus.DEFERRED  # waits for every file job
    _work_files(connection)
    result = jobs.wait_for_commit(file_jobs, commit, poll=0.05)
    assert result.releases == {s3_corpus.name: 2} and not result.already_applied
    assert all(j.get_status(refresh=True) == JobStatus.FINISHED for j in file_jobs)
    assert engine.verify(s3_corpus.name).ok
    assert all(e.authored_tweets == 0 and not e.in_users_file for e in engine.footprint(_target(s3_corpus)))
    # The same run fanned out again (a coordinator that died and came back) publishes nothing new.
    again = engine.plan_batch("fan-1", [(_target(s3_corpus), "remove")], None)
    assert again.already_applied and engine.get_dataset(s3_corpus.name).current_version == 2


def test_a_file_job_killed_with_sigkill_is_retried_and_the_run_publishes_once(s3_corpus, fast, settings_env):
    engine, plan = _plan("fan-kill", _target(s3_corpus))
    connection = queues.connect()
    file_jobs, commit = jobs.enqueue_fan_out(engine, plan, connection)
    env = {**settings_env, **FAST, "APPEALS_STORE_URL": runtime.settings().store_url,
           "APPEALS_S3_ENDPOINT_URL": runtime.settings().s3_endpoint_url, "APPEALS_FAULT_KILL_AT": "file_job"}
    p = subprocess.run([sys.executable, "-c", "from appeals.cli import main; main()", "worker", "--burst"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == -9, p.stderr[-2000:]
    registry = StartedJobRegistry(queue=queues.files_queue(connection))
    dead = registry.get_job_ids()
    assert len(dead) == 1  # the job its worker died in
    # Once its heartbeat has run out, RQ's cleanup retries it (a later cleanup time stands in for the wait).
    registry.cleanup(timestamp=time.time() + runtime.settings().file_job_timeout + 120)
    from rq.job import Job

    assert Job.fetch(dead[0].split(":")[0], connection=connection).get_status() in (
        JobStatus.QUEUED, JobStatus.SCHEDULED)  # retried, not lost
    _work_files(connection)
    result = jobs.wait_for_commit(file_jobs, commit, poll=0.05)
    assert result.releases == {s3_corpus.name: 2}
    assert engine.get_dataset(s3_corpus.name).current_version == 2 and engine.verify(s3_corpus.name).ok


SWEEP = 3  # seconds: the sweep period of these tests, hence a file job's heartbeat TTL (queues.heartbeat_ttl)


def _wait_started_by(connection, worker: str, proc: subprocess.Popen, job_id: str | None = None) -> str:
    """The id of the `files` job (`job_id`, or any) that `worker` has started, once it has."""
    from rq.job import Job

    registry = StartedJobRegistry(queue=queues.files_queue(connection))
    deadline = time.monotonic() + 120  # a hang guard, not a measurement
    while True:
        for jid, _ in registry.get_job_and_execution_ids(cleanup=False):
            if (job_id is None or jid == job_id) and Job.fetch(jid, connection=connection).worker_name == worker:
                return jid
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "the worker never started the job"
        time.sleep(0.1)


def _wait_published(engine, name: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120  # a hang guard, not a measurement
    while engine.get_dataset(name).current_version != 2:
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "the commit job never published"
        time.sleep(0.1)


@pytest.mark.parametrize("point", ["file_job", "after_publish"])
def test_a_files_job_whose_worker_is_killed_is_retried_within_a_sweep_period_and_published_once(
        s3_corpus, fast, settings_env, point):
    """kill -9 of a worker paused inside a file job, or inside the commit job right after its conditional write:
    the job is back on the queue after at most two sweeps one sweep period apart (not after the job timeout
    + 60 s), and the run publishes exactly once."""
    from dataclasses import replace

    from rq.job import Job

    from workers.runner import ResilientWorker

    runtime.bootstrap(replace(runtime.settings(), sweep_seconds=SWEEP))
    assert queues.file_heartbeat_ttl(runtime.settings()) <= SWEEP < runtime.settings().file_job_timeout
    engine, plan = _plan(f"fan-sweep-{point}", _target(s3_corpus))
    connection = queues.connect()
    file_jobs, commit = jobs.enqueue_fan_out(engine, plan, connection)
    env = {**settings_env, **FAST, "APPEALS_SWEEP_SECONDS": str(SWEEP),
           "APPEALS_STORE_URL": runtime.settings().store_url,
           "APPEALS_S3_ENDPOINT_URL": runtime.settings().s3_endpoint_url, "APPEALS_FAULT_PAUSE_AT": f"{point}:600"}
    victim = subprocess.Popen([sys.executable, "-c", "from appeals.cli import main; main()", "worker",
                               "--name", "victim"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    try:
        if point == "file_job":
            job_id = _wait_started_by(connection, "victim", victim)
        else:  # the victim ran every file job, then the commit job, which published and paused
            job_id = _wait_started_by(connection, "victim", victim, commit.id)
            _wait_published(engine, s3_corpus.name, victim)
        # Alive, paused in the job for longer than the heartbeat TTL: the sweep leaves its job alone.
        time.sleep(SWEEP + 1)
        assert jobs.sweep()["files"] == 0
        assert Job.fetch(job_id, connection=connection).get_status() == JobStatus.STARTED
        assert job_id not in queues.files_queue(connection).job_ids
    finally:
        victim.kill()  # SIGKILL, in the middle of the job
        victim.communicate()
    assert victim.returncode == -signal.SIGKILL

    sweeps = 0
    while sweeps < 2:
        time.sleep(SWEEP)  # what a live worker's sweep thread waits between sweeps
        sweeps += 1
        if jobs.sweep()["files"]:
            break
    job = Job.fetch(job_id, connection=connection)
    assert job.get_status() == JobStatus.QUEUED and job_id in queues.files_queue(connection).job_ids, (
        f"not retried after {sweeps} sweeps")
    assert job.retries_left == len(FAST["APPEALS_RETRY_INTERVALS"].split(",")) - 1  # RQ's retry, counted

    # Any worker finishes the run (the one in this test process, with the same short heartbeats).
    work_in_process([queues.files_queue(connection)], ResilientWorker)
    result = jobs.wait_for_commit(file_jobs, commit, poll=0.05)
    assert result.releases == {s3_corpus.name: 2}
    assert result.already_applied == (point == "after_publish")
    assert jobs.sweep()["files"] == 0  # nothing left to recover
    _work_files(connection)
    assert engine.get_dataset(s3_corpus.name).current_version == 2 and engine.verify(s3_corpus.name).ok
    assert all(e.authored_tweets == 0 and not e.in_users_file for e in engine.footprint(_target(s3_corpus)))


def test_a_commit_job_failed_after_it_published_leaves_the_run_recorded_as_published(s3_corpus, fast, monkeypatch):
    """RQ fails a commit job killed after its conditional write once its retries are spent: HEAD decides."""
    from workers import locks

    def commit_then_fail(file_jobs, commit, lock=None, poll=None):
        _work_files(queues.connect())  # every file job, then the commit job, which publishes
        raise jobs.FileJobFailed(f"{commit.description}: AbandonedJobError")

    monkeypatch.setattr(jobs, "wait_for_commit", commit_then_fail)
    engine = runtime.engine()
    with locks.held(queues.connect(), jobs.LOCK_NAME, 5, wait=2) as lock:
        result = jobs._fan_out(engine, "fan-late", [(_target(s3_corpus), "remove")], lock, {})
    assert result.releases == {s3_corpus.name: 2} and result.already_applied
    assert engine.get_dataset(s3_corpus.name).current_version == 2


def test_a_file_job_dequeued_by_a_worker_that_died_before_starting_it_is_requeued_by_the_sweep(s3_corpus, fast):
    """The worker died between RQ's BLMOVE and starting the job: `queued`, in RQ's intermediate list only."""
    engine, plan = _plan("fan-handoff", _target(s3_corpus))
    connection = queues.connect()
    file_jobs, commit = jobs.enqueue_fan_out(engine, plan, connection)
    queue = queues.files_queue(connection)
    taken = connection.lmove(queue.key, queue.intermediate_queue_key).decode()
    assert taken == file_jobs[0].id and taken not in queue.job_ids

    assert jobs.sweep()["files"] == 1
    assert queue.job_ids[0] == taken and connection.lrange(queue.intermediate_queue_key, 0, -1) == []
    _work_files(connection)
    result = jobs.wait_for_commit(file_jobs, commit, poll=0.05)
    assert result.releases == {s3_corpus.name: 2}
    assert engine.get_dataset(s3_corpus.name).current_version == 2


def test_a_file_that_cannot_be_rewritten_fails_the_run_and_publishes_nothing(s3_corpus, fast):
    engine, plan = _plan("fan-fail", _target(s3_corpus))
    connection = queues.connect()
    store = engine.store
    victim = plan.tasks[0].entry["sha256"]
    store.client.delete_object(Bucket=store.bucket, Key=store.blobs.key(victim))  # a lost source object
    store.blobs.forget(victim)
    file_jobs, commit = jobs.enqueue_fan_out(engine, plan, connection)
    _work_files(connection)
    with pytest.raises(jobs.FileJobFailed, match=plan.tasks[0].entry["path"]):
        jobs.wait_for_commit(file_jobs, commit, poll=0.05)
    assert commit.get_status(refresh=True) in (JobStatus.CANCELED, JobStatus.DEFERRED)
    assert engine.get_dataset(s3_corpus.name).current_version == 1


def test_a_stale_commit_job_cannot_publish_over_a_newer_fence(s3_corpus, fast):
    """A commit job left from a coordinator that lost its lock carries an older fence: refused."""
    engine = runtime.engine()
    uid = _target(s3_corpus)
    plan = engine.plan_batch("fan-old", [(uid, "remove")], 5)
    engine.apply("other", [(sorted(users_of(s3_corpus), key=lambda r: r["userid"])[1]["userid"], "rehash")],
                 fence=9)
    outcomes = [engine.rewrite_task(plan, i) for i in range(len(plan.tasks))]
    with pytest.raises(PublishConflict):
        engine.commit_batch(plan, outcomes)
