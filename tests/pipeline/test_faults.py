"""Fault tests against a real Redis: workers killed at every step, Redis flushed, two workers racing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import redis
from sqlalchemy import select

from appeals import db, runtime
from appeals.models import Appeal, AppealEvent, Correction, CorrectionRun, OutboxMessage
from tests.pipeline.conftest import current_versions, run_cli
from workers import locks
from workers.engine.faults import POINTS

pytestmark = pytest.mark.slow

KILL_POINTS = (*POINTS, "before_commit")


def _wait_lock_expiry(redis_url: str, timeout: float = 10) -> None:
    # The dead worker's lock must expire on its own: that is what the expiry is for.
    conn = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while locks.is_held(conn, "datasets"):
        assert time.monotonic() < deadline, "the dead worker's lock never expired"
        time.sleep(0.2)


def _assert_corrected_once(appeal_id: int, user_id: str, before: dict[str, int], touched: set[str]) -> None:
    db.session.remove()
    appeal = db.session.get(Appeal, appeal_id)
    assert appeal.status == "corrected"
    corrections = db.session.scalars(select(Correction)).all()
    assert len(corrections) == 1 and corrections[0].status == "done"
    expected = {name: before[name] + 1 for name in touched}
    assert corrections[0].releases == expected
    # Exactly one new release per affected dataset, none elsewhere, every release verifies.
    assert current_versions() == {**before, **expected}
    engine = runtime.engine()
    for name in before:
        assert [v.version for v in engine.get_dataset(name).versions] == list(range(1, current_versions()[name] + 1))
        report = engine.verify(name)
        assert report.ok, report.problems
    for entry in engine.footprint(user_id):
        assert entry.authored_tweets == 0 and not entry.in_users_file
    statuses = db.session.scalars(select(AppealEvent.status_to).where(AppealEvent.appeal_id == appeal_id)
                                  .order_by(AppealEvent.id)).all()
    assert statuses.count("corrected") == 1
    mail = db.session.scalars(select(OutboxMessage).where(OutboxMessage.subject.contains("Corrected"))).all()
    assert len(mail) == 1


@pytest.mark.parametrize("point", KILL_POINTS)
def test_worker_killed_at_each_step_then_a_new_worker_finishes_exactly_once(
        point, corpus_account, approve, confirm, worker_env, redis_url):
    """kill -9 at `point`; after the lock expires a fresh worker completes the correction exactly once."""
    user_id = corpus_account.user_id
    touched = {entry.dataset for entry in runtime.engine().footprint(user_id)}
    before = current_versions()
    appeal_id = confirm(approve(corpus_account, "remove")).id
    db.session.remove()

    killed = run_cli({**worker_env, "APPEALS_FAULT_KILL_AT": point}, "worker", "--burst")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert db.session.get(Appeal, appeal_id).status == "correcting"
    db.session.remove()

    _wait_lock_expiry(redis_url)
    clean = run_cli(worker_env, "worker", "--burst")
    assert clean.returncode == 0, clean.stderr[-3000:]
    _assert_corrected_once(appeal_id, user_id, before, touched)


def test_redis_flushed_after_approval_the_sweep_completes_it(
        corpus_account, approve, confirm, worker_env, redis_url):
    """Redis loses everything after the confirmation: the worker's sweep re-enqueues from the database."""
    user_id = corpus_account.user_id
    touched = {entry.dataset for entry in runtime.engine().footprint(user_id)}
    before = current_versions()
    appeal_id = confirm(approve(corpus_account, "rehash")).id
    db.session.remove()
    conn = redis.Redis.from_url(redis_url)
    assert conn.keys("rq:job:correction-*")
    conn.flushdb()

    result = run_cli(worker_env, "worker", "--burst")
    assert result.returncode == 0, result.stderr[-3000:]
    db.session.remove()
    assert db.session.get(Appeal, appeal_id).status == "corrected"
    assert current_versions() == {**before, **{name: before[name] + 1 for name in touched}}


def test_redis_flushed_mid_run_keeps_fencing_tokens_increasing(
        corpus_account, approve, confirm, worker_env, redis_url):
    """A worker killed mid-publish, then Redis flushed (lock and fence counter gone): still one release."""
    user_id = corpus_account.user_id
    touched = {entry.dataset for entry in runtime.engine().footprint(user_id)}
    before = current_versions()
    appeal_id = confirm(approve(corpus_account, "remove")).id
    db.session.remove()
    killed = run_cli({**worker_env, "APPEALS_FAULT_KILL_AT": "after_publish"}, "worker", "--burst")
    assert killed.returncode == -signal.SIGKILL
    redis.Redis.from_url(redis_url).flushdb()

    clean = run_cli(worker_env, "worker", "--burst")
    assert clean.returncode == 0, clean.stderr[-3000:]
    _assert_corrected_once(appeal_id, user_id, before, touched)
    fences = db.session.scalars(select(CorrectionRun.fence)).all()
    assert fences and redis.Redis.from_url(redis_url).get(locks.FENCE_KEY) is not None
    assert int(redis.Redis.from_url(redis_url).get(locks.FENCE_KEY)) >= max(fences)


def test_two_workers_racing_on_the_same_batch_publish_one_release(
        corpus_account, second_account, approve, confirm, worker_env):
    """Two processes run the same corrections at the same moment: one run, one release per dataset."""
    touched = {entry.dataset for account in (corpus_account, second_account)
               for entry in runtime.engine().footprint(account.user_id)}
    before = current_versions()
    first = confirm(approve(corpus_account, "remove")).id
    second = confirm(approve(second_account, "rehash")).id
    correction_id = db.session.scalar(select(Correction.id).order_by(Correction.id))
    db.session.remove()

    code = f"from workers.jobs import run_corrections; print(run_corrections({correction_id}))"
    racers = [subprocess.Popen([sys.executable, "-c", code], env=worker_env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in racers]
    assert [p.returncode for p in racers] == [0, 0], [err[-2000:] for _, err in outputs]

    db.session.remove()
    assert db.session.query(CorrectionRun).count() == 1
    assert {db.session.get(Appeal, i).status for i in (first, second)} == {"corrected"}
    assert current_versions() == {**before, **{name: before[name] + 1 for name in touched}}
    for name in before:
        assert runtime.engine().verify(name).ok
