"""`appeals corrections apply` handed to a running worker (issue 14): same output, same errors, no SQLAlchemy."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import redis
from rq import Queue, Worker
from rq.job import Job
from sqlalchemy import select

from appeals import db, runtime
from appeals.commands import corrections as command
from appeals.models import CorrectionRun
from workers import handoff, jobs, locks, queues

from .conftest import users_of
from .test_fast_commands import PROBE

HEAVY = ("sqlalchemy", "flask", "numpy", "hyperscan", "workers.engine", "appeals.models", "appeals.services")
# A batch handed over and answered within the fast wait loads no Redis client library but hiredis (workers/wire.py).
CLIENT_LIBRARIES = ("redis", "rq")


@pytest.fixture
def env(settings_env):
    """The settings of the test for subprocesses; a busy lock is given up after 1 s (the error test)."""
    return dict(settings_env, APPEALS_LOCK_WAIT_SECONDS="1", APPEALS_SWEEP_SECONDS="5")


@pytest.fixture
def worker(env, corpus, tmp_path):
    """`appeals worker` in a subprocess (its log in tmp_path), returned once it listens on the corrections queue."""
    log = open(tmp_path / "worker.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", "from appeals.cli import main; main()", "worker"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    connection = redis.Redis.from_url(env["APPEALS_REDIS_URL"])
    queue = Queue(queues.CORRECTIONS_QUEUE, connection=connection)
    deadline = time.monotonic() + 60
    while not any(queues.worker_alive(connection, w.name) for w in Worker.all(queue=queue)):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the worker did not start: {(tmp_path / 'worker.log').read_text()[-3000:]}")
        time.sleep(0.1)
    yield proc
    _stop(proc)
    log.close()


def _stop(proc: subprocess.Popen | None) -> None:
    """Stop a worker as an operator would (SIGTERM), and for good if it has not gone within a minute."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _apply(env, *args, probe=True):
    """Run `appeals corrections apply ARGS`; (completed process, modules it imported or None)."""
    done = subprocess.run([sys.executable, "-c", PROBE, "corrections", "apply", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    modules = set(json.loads(lines[-1])) if lines and lines[-1].startswith("[") else None
    if modules is not None:
        done.stderr = "\n".join(lines[:-1])
    return done, modules


def _heavy(modules) -> list[str]:
    return sorted(m for m in modules if m.startswith(HEAVY) or m.split(".")[0] in CLIENT_LIBRARIES)


def _operator_jobs(env, finished_only: bool = False) -> list[Job]:
    """The operators' batch jobs on the corrections queue: finished, and started unless `finished_only`.

    Started first: a job moves from started to finished (the command may have its reply a moment before),
    so looking in that order finds one that moves between the two looks."""
    connection = redis.Redis.from_url(env["APPEALS_REDIS_URL"])
    queue = Queue(queues.CORRECTIONS_QUEUE, connection=connection)
    ids = [] if finished_only else queue.started_job_registry.get_job_ids()
    ids = list(dict.fromkeys(ids + queue.finished_job_registry.get_job_ids()))
    found = [Job.fetch(i, connection=connection) for i in ids]
    return [j for j in found if j.func_name == queues.OPERATOR_JOB]


def test_the_command_names_the_workers_job():
    """The command enqueues the job by name (importing `workers.jobs` would load SQLAlchemy)."""
    assert queues.OPERATOR_JOB == f"{jobs.operator_job.__module__}.{jobs.operator_job.__name__}"


def test_a_running_worker_applies_the_batch_and_the_command_prints_what_in_process_prints(env, corpus, worker):
    """With a worker running, the batch is its job (the command loads no SQLAlchemy, models or engine, nor
    redis-py or RQ), the release is published and recorded; the in-process path prints the same document
    and the same lines."""
    first, second = (r["userid"] for r in users_of(corpus[0])[:2])
    handed, modules = _apply(env, "--remove", first, "--reason", "handed off", "--json")
    assert handed.returncode == 0, handed.stderr[-3000:]
    assert _heavy(modules) == []
    assert [j.args for j in _operator_jobs(env)] == [([[first, "remove"]], "handed off", list(command.OPERATOR))]
    outcome = json.loads(handed.stdout)
    engine = runtime.engine()
    assert outcome["status"] == "done" and outcome["recorded"] == [first] and outcome["releases"]
    for name, version in outcome["releases"].items():
        assert engine.get_dataset(name).current_version == version
    db.session.remove()
    run = db.session.get(CorrectionRun, outcome["run"])
    assert run.status == "done" and run.reason == "handed off" and run.releases == outcome["releases"]

    here, modules = _apply(env, "--remove", second, "--reason", "in process", "--json", "--in-process")
    assert here.returncode == 0, here.stderr[-3000:]
    assert "sqlalchemy" in modules and len(_operator_jobs(env)) == 1  # applied here, not by the worker
    assert set(json.loads(here.stdout)) == set(outcome)

    # The same request again, both ways: the decision stands; the same text, byte for byte.
    again = [_apply(env, "--remove", first, "--reason", "again", *extra)[0] for extra in ((), ("--in-process",))]
    assert [a.returncode for a in again] == [0, 0]
    assert again[0].stdout == again[1].stdout == f"{first}: the decision already stands and every current " \
                                                 "release obeys it.\nEvery decision was already standing and " \
                                                 "already published; nothing was changed now.\n"
    assert len(_operator_jobs(env)) == 2


def test_an_error_comes_back_as_the_same_line(env, corpus, worker, settings):
    """A busy dataset lock: the worker's job gives up as the command would, and the command prints the same
    one line with the same exit code either way; nothing is published."""
    uid = users_of(corpus[0])[0]["userid"]
    engine = runtime.engine()
    before = {name: engine.get_dataset(name).current_version for name in (d.name for d in corpus)}
    with locks.held(redis.Redis.from_url(settings.redis_url), jobs.LOCK_NAME, 60):
        results = [_apply(env, "--remove", uid, "--reason", "busy", *extra)[0] for extra in ((), ("--in-process",))]
    for done in results:
        assert done.returncode == 1 and "Traceback" not in done.stderr
    assert results[0].stderr == results[1].stderr == \
        "Error: A correction run or an import is in progress; try again when it has finished."
    assert len(_operator_jobs(env)) == 1
    assert {name: engine.get_dataset(name).current_version for name in before} == before


def test_interrupted_or_timed_out_waiting_leaves_the_batch_to_the_worker(env, corpus, worker, settings):
    """Ctrl-C (and --timeout) stop the waiting, not the batch: the command says how to follow it, the worker
    finishes it once the lock it waits for is free, and `corrections list --runs` shows it done."""
    uid = users_of(corpus[0])[0]["userid"]
    slow = dict(env, APPEALS_LOCK_WAIT_SECONDS="60")
    _stop(worker)  # replaced by a worker that waits long enough for the lock
    proc = subprocess.Popen([sys.executable, "-c", "from appeals.cli import main; main()", "worker"], env=slow,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    connection = redis.Redis.from_url(settings.redis_url)
    queue = Queue(queues.CORRECTIONS_QUEUE, connection=connection)
    try:
        while not any(queues.worker_alive(connection, w.name) and w.pid == proc.pid for w in Worker.all(queue=queue)):
            assert proc.poll() is None
            time.sleep(0.1)
        with locks.held(connection, jobs.LOCK_NAME, 60):
            timed_out, _ = _apply(slow, "--remove", uid, "--reason", "patience", "--timeout", "1")
            assert timed_out.returncode == 1
            assert "No result after 1 s; the batch goes on in the worker" in timed_out.stderr
            assert "appeals corrections list --runs" in timed_out.stderr
            cli = subprocess.Popen([sys.executable, "-c", "from appeals.cli import main; main()", "corrections",
                                    "apply", "--remove", uid, "--reason", "patience"], env=slow,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 60
            while len(queue.get_job_ids()) < 1 and time.monotonic() < deadline:  # behind the first one
                time.sleep(0.1)
            cli.send_signal(signal.SIGINT)
            out, err = cli.communicate(timeout=30)
            assert cli.returncode == 130, (out, err)
            assert "Interrupted; the batch goes on in the worker" in err and "Traceback" not in err
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            listed = subprocess.run([sys.executable, "-c", "from appeals.cli import main; main()", "corrections",
                                     "list", "--runs"], env=slow, capture_output=True, text=True, timeout=60)
            runs = [json.loads(line) for line in listed.stdout.splitlines()]
            if runs and all(r["status"] == "done" for r in runs) and len(_operator_jobs(slow, finished_only=True)) == 2:
                break
            time.sleep(0.2)
        assert [(r["items"], r["reason"], r["status"]) for r in runs] == [([[uid, "remove"]], "patience", "done")]
        # The first job published; the second found the decision standing.
        values = [j.return_value() for j in _operator_jobs(slow, finished_only=True)]
        assert all("outcome" in v for v in values), values
        results = sorted(v["outcome"]["run"] is None for v in values)
        assert results == [False, True]
    finally:
        _stop(proc)
    db.session.remove()
    assert db.session.scalar(select(CorrectionRun).where(CorrectionRun.status != "done")) is None


def test_without_a_running_worker_the_batch_is_applied_in_process(env, corpus):
    """No worker: nothing is enqueued, the command applies the batch itself (as before the hand-off)."""
    uid = users_of(corpus[0])[0]["userid"]
    done, modules = _apply(env, "--remove", uid, "--reason", "no worker")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "published version 2" in done.stdout and "sqlalchemy" in modules
    assert _operator_jobs(env) == []


def test_a_worker_killed_mid_batch_is_reported_and_the_batch_is_run_again(env, corpus, worker, settings):
    """kill -9 of the worker while the batch waits for the lock: the waiting command says so within a
    heartbeat; the next worker's start-up (RQ's abandoned-job cleanup, the job's one retry) runs the batch,
    which publishes once."""
    uid = users_of(corpus[0])[0]["userid"]
    slow = dict(env, APPEALS_LOCK_WAIT_SECONDS="60")
    _stop(worker)
    connection = redis.Redis.from_url(settings.redis_url)
    queue = Queue(queues.CORRECTIONS_QUEUE, connection=connection)
    cmd = [sys.executable, "-c", "from appeals.cli import main; main()"]
    doomed = subprocess.Popen([*cmd, "worker"], env=slow, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    successor = None
    try:
        while not any(queues.worker_alive(connection, w.name) and w.pid == doomed.pid
                      for w in Worker.all(queue=queue)):
            assert doomed.poll() is None
            time.sleep(0.1)
        with locks.held(connection, jobs.LOCK_NAME, 120):
            cli = subprocess.Popen([*cmd, "corrections", "apply", "--remove", uid, "--reason", "survives"], env=slow,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 60
            while not _operator_jobs(slow) and time.monotonic() < deadline:  # started: waiting for the lock
                time.sleep(0.1)
            doomed.kill()
            doomed.wait()
            out, err = cli.communicate(timeout=60)
        assert cli.returncode == 1 and "The worker applying the batch" in err and "stopped" in err, (out, err)
        successor = subprocess.Popen([*cmd, "worker"], env=slow, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 90
        while not _operator_jobs(slow, finished_only=True) and time.monotonic() < deadline:
            time.sleep(0.2)
        (job,) = _operator_jobs(slow, finished_only=True)
        outcome = job.return_value()["outcome"]
        assert outcome["recorded"] == [uid] and outcome["releases"] == {corpus[0].name: 2}
    finally:
        _stop(doomed)
        _stop(successor)
    assert runtime.engine().get_dataset(corpus[0].name).current_version == 2


def test_a_request_held_by_a_worker_that_died_before_enqueuing_it_is_applied_within_a_sweep(env, corpus, worker,
                                                                                           settings):
    """A worker took a request into its intake and died before making it a job: the next sweep (every 5 s
    here) gives it back, a live worker's intake takes it, and its reply reaches whoever waits for it."""
    uid = users_of(corpus[0])[0]["userid"]
    connection = redis.Redis.from_url(settings.redis_url)
    request_id, payload = handoff.new_request([[uid, "remove"]], "ghost", list(command.OPERATOR))
    with connection.pipeline(transaction=True) as pipe:  # atomically: the live intake must not see it first
        pipe.rpush(handoff.REQUESTS_KEY, payload)
        pipe.lmove(handoff.REQUESTS_KEY, handoff.intake_key("ghost"), "LEFT", "RIGHT")
        pipe.sadd(handoff.WORKERS_KEY, "ghost")  # it had an intake; it has no heartbeat
        pipe.execute()
    deadline = time.monotonic() + 60
    reply = None
    while reply is None and time.monotonic() < deadline:  # short reads: redis-py 8 times a socket out at 5 s
        reply = handoff.wait_reply(connection, request_id, timeout=1)
    assert reply is not None, "no reply within a minute"
    assert reply["outcome"]["recorded"] == [uid] and reply["outcome"]["releases"] == {corpus[0].name: 2}
    assert not connection.exists(handoff.intake_key("ghost"))
    assert b"ghost" not in connection.smembers(handoff.WORKERS_KEY)
    assert runtime.engine().get_dataset(corpus[0].name).current_version == 2


def test_a_request_nobody_takes_is_withdrawn_and_applied_here_once_no_worker_is_left(env, corpus, settings):
    """A worker that looked alive (its heartbeat) never takes the request (it stopped first): when its
    heartbeat lapses, the command takes the request back and applies the batch itself; no job is left."""
    uid = users_of(corpus[0])[0]["userid"]
    connection = redis.Redis.from_url(settings.redis_url)
    connection.sadd(handoff.WORKERS_KEY, "stalled")
    queues.beat(connection, "stalled", 3)
    started = time.monotonic()
    done, modules = _apply(env, "--remove", uid, "--reason", "nobody took it")
    assert done.returncode == 0, done.stderr[-3000:]
    assert time.monotonic() - started >= 2.5  # it did wait for the stalled worker's heartbeat to lapse
    assert "published version 2" in done.stdout and "sqlalchemy" in modules
    assert connection.llen(handoff.REQUESTS_KEY) == 0 and _operator_jobs(env) == []


def test_a_request_redis_lost_is_reported_not_waited_for(env, corpus, settings):
    """The request vanished (Redis restarted empty, say) before any worker took it: the command says so and
    that nothing was applied, instead of waiting out its timeout."""
    uid = users_of(corpus[0])[0]["userid"]
    connection = redis.Redis.from_url(settings.redis_url)
    connection.sadd(handoff.WORKERS_KEY, "stalled")
    queues.beat(connection, "stalled", 120)
    cli = subprocess.Popen([sys.executable, "-c", "from appeals.cli import main; main()", "corrections", "apply",
                            "--remove", uid, "--reason", "lost"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not connection.llen(handoff.REQUESTS_KEY):
        assert time.monotonic() < deadline and cli.poll() is None
        time.sleep(0.05)
    connection.delete(handoff.REQUESTS_KEY)
    out, err = cli.communicate(timeout=30)
    assert cli.returncode == 1 and "Redis lost the batch" in err and "nothing was applied" in err, (out, err)
    assert runtime.engine().get_dataset(corpus[0].name).current_version == 1
