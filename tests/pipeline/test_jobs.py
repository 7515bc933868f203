"""The correction job in process, through a real Redis and RQ's SimpleWorker."""

from __future__ import annotations

import subprocess
import sys

import pytest
from rq.job import Job
from sqlalchemy import select

from appeals import db, runtime
from appeals.models import Appeal, AppealEvent, AuditEntry, Correction, CorrectionRun, OutboxMessage
from appeals.services import corrections
from tests.pipeline.conftest import actor_of, current_versions
from workers import queues
from workers.engine import faults


def _footprint_datasets(user_id: str) -> set[str]:
    return {entry.dataset for entry in runtime.engine().footprint(user_id)}


def _reload(model, key):
    db.session.expire_all()
    return db.session.get(model, key)


def test_workers_import_without_flask():
    """The jobs, the queue helpers, the locks and the worker loop load without Flask."""
    code = ("import sys, workers.jobs, workers.queues, workers.locks, workers.runner;"
            "assert 'flask' not in sys.modules, sorted(m for m in sys.modules if 'flask' in m)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_confirmation_writes_correction_and_enqueues_one_deterministic_job(corpus_account, approve, confirm, fast):
    """Confirming writes a queued correction in the same commit and enqueues `correction-<id>`, once."""
    appeal = confirm(approve(corpus_account, "rehash"))
    correction = db.session.scalar(select(Correction).where(Correction.appeal_id == appeal.id))
    assert (correction.status, correction.user_id, correction.remedy) == ("queued", corpus_account.user_id, "rehash")
    assert appeal.status == "correction_queued"

    connection = queues.connect()
    queue = queues.corrections_queue(connection)
    assert queue.job_ids == [f"correction-{correction.id}"]
    corrections.dispatch()
    corrections.dispatch()
    assert queue.job_ids == [f"correction-{correction.id}"]
    job = Job.fetch(f"correction-{correction.id}", connection=connection)
    assert job.retries_left == 2 and job.args == (correction.id,)


def test_queue_correction_refuses_an_approval_without_remedy_or_twice(corpus_account, approve, staff):
    """A correction needs a remedy, and an appeal gets one correction at most."""
    from appeals.services.errors import Conflict, Invalid

    appeal = approve(corpus_account, "remove")
    appeal.decision_remedy = None
    with pytest.raises(Invalid):
        corrections.queue_correction(appeal, actor_of(staff["senior"]))
    db.session.rollback()
    appeal = db.session.get(Appeal, appeal.id)
    appeal.decision_remedy = "remove"
    corrections.queue_correction(appeal, actor_of(staff["senior"]))
    db.session.commit()
    with pytest.raises(Conflict):
        corrections.queue_correction(appeal, actor_of(staff["senior"]))
    db.session.rollback()
    assert db.session.query(Correction).count() == 1


def test_confirmation_succeeds_when_redis_is_down_and_the_sweep_enqueues_later(
        corpus_account, approve, confirm, fast, settings, caplog):
    """Redis unreachable at confirmation: the approval is kept, the job comes with the next sweep."""
    from dataclasses import replace

    from workers import jobs

    appeal = approve(corpus_account)
    runtime.bootstrap(replace(settings, redis_url="redis://127.0.0.1:9/0"))  # nothing listens on port 9
    confirm(appeal)
    assert "could not enqueue correction jobs" in caplog.text
    correction = db.session.scalar(select(Correction))
    assert correction.status == "queued"

    runtime.bootstrap(settings)
    assert queues.corrections_queue(queues.connect()).job_ids == []
    assert jobs.sweep()["enqueued"] == 1
    assert queues.corrections_queue(queues.connect()).job_ids == [f"correction-{correction.id}"]


def test_job_publishes_one_release_per_dataset_and_tells_the_owner(
        corpus_account, approve, confirm, drain, fast, smtp_server):
    """The run removes the account everywhere, publishes verified releases and emails the owner."""
    before = current_versions()
    user_id, email = corpus_account.user_id, corpus_account.email
    touched = _footprint_datasets(user_id)
    assert touched
    appeal_id = confirm(approve(corpus_account, "remove")).id
    drain()

    appeal = _reload(Appeal, appeal_id)
    assert appeal.status == "corrected"
    correction = db.session.scalar(select(Correction))
    expected = {name: before[name] + 1 for name in touched}
    assert correction.status == "done" and correction.releases == expected
    assert current_versions() == {**before, **expected}
    for name in before:
        assert runtime.engine().verify(name).ok
    # Removed: no profile and no tweets of its own left; others' references are re-hashed, not deleted.
    for entry in runtime.engine().footprint(user_id):
        assert entry.authored_tweets == 0 and not entry.in_users_file

    run = db.session.get(CorrectionRun, correction.run_id)
    assert run.status == "done" and run.progress == 1.0
    assert run.bytes_written > 0 and run.files_rewritten >= len(touched) and run.duration_s > 0
    assert run.job_id == f"correction-{correction.id}"

    events = db.session.scalars(select(AppealEvent).where(AppealEvent.appeal_id == appeal.id)
                                .order_by(AppealEvent.id)).all()
    assert [e.status_to for e in events][-3:] == ["correction_queued", "correcting", "corrected"]
    assert events[-1].data["releases"] == expected
    for name, version in expected.items():
        assert f"{name} version {version}" in events[-1].public_note

    corrected_mail = [m for m in smtp_server if "Corrected" in m["Subject"]]
    assert len(corrected_mail) == 1 and corrected_mail[0]["To"] == email
    body = corrected_mail[0].get_payload(decode=True).decode()
    for name, version in expected.items():
        assert f"{name}: version {version}" in body
    actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"correction.queue", "correction.start", "correction.done", "correction_run.done"} <= actions


def test_corrections_confirmed_during_a_run_are_taken_together_by_the_next(
        corpus, corpus_account, second_account, make_account, approve, confirm, drain, fast):
    """Two approvals confirmed while a run applies share the next run: one more release, not two."""
    from tests.conftest import users_of

    third_row = sorted(users_of(corpus[2]), key=lambda r: r["userid"])[3]
    third = make_account(third_row["userid"], third_row["user_screen_name"], email="third@example.org")
    late = [approve(second_account, "rehash").id, approve(third, "remove").id]
    before = current_versions()
    first_id = confirm(approve(corpus_account, "remove")).id

    def confirm_late(point: str) -> None:
        if point == "mid_rewrite" and late:
            while late:
                confirm(late.pop())

    faults.test_hook = confirm_late
    try:
        drain()
    finally:
        faults.test_hook = None

    rows = db.session.scalars(select(Correction).order_by(Correction.id)).all()
    assert [c.status for c in rows] == ["done", "done", "done"]
    assert rows[1].run_id == rows[2].run_id != rows[0].run_id
    assert db.session.query(CorrectionRun).count() == 2
    after = current_versions()
    for name in before:
        # At most one release per run: the first run and the coalesced second one.
        assert after[name] - before[name] <= 2
        assert runtime.engine().verify(name).ok
    for appeal_id in (first_id, rows[1].appeal_id, rows[2].appeal_id):
        assert _reload(Appeal, appeal_id).status == "corrected"


def test_verification_failure_publishes_nothing_then_admin_retry_corrects(
        corpus_account, approve, confirm, drain, fast, staff, monkeypatch):
    """A rewrite that fails verification: no release, correction_failed with the reason; an admin retries."""
    from workers.engine import correct

    before = current_versions()
    email = corpus_account.email
    appeal_id = confirm(approve(corpus_account, "remove")).id
    real_row = correct.Corrector.row

    def sloppy(self, fields, cols):
        # A rewrite that also touches a column no correction may change: verification must refuse it.
        new = real_row(self, fields, cols)
        if isinstance(new, list) and "tweet_time" in cols:
            new[cols["tweet_time"]] = "1999-01-01 00:00"
        return new

    with monkeypatch.context() as patch:
        patch.setattr(correct.Corrector, "row", sloppy)
        drain()

    correction = db.session.scalar(select(Correction))
    assert correction.status == "failed"
    assert correction.error.startswith("VerificationFailed")
    assert _reload(Appeal, appeal_id).status == "correction_failed"
    assert current_versions() == before
    assert all(runtime.engine().verify(name).ok for name in before)
    run = db.session.get(CorrectionRun, correction.run_id)
    assert run.status == "failed" and "VerificationFailed" in run.error
    # The owner reads a plain status, never the technical error.
    owner_mail = db.session.scalars(select(OutboxMessage).where(OutboxMessage.to_addr == email)).all()
    assert owner_mail and not any("VerificationFailed" in m.body for m in owner_mail)

    corrections.retry(correction.id, actor_of(staff["admin"]))
    assert _reload(Appeal, appeal_id).status == "correction_queued"
    assert _reload(Correction, correction.id).status == "queued"
    drain(sweep=False)
    assert _reload(Appeal, appeal_id).status == "corrected"
    assert _reload(Correction, correction.id).status == "done"
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "correction.retry")).actor_id == staff["admin"].id


def test_transient_failures_are_retried_then_marked_failed(corpus_account, approve, confirm, drain, fast):
    """A failure the engine does not call permanent is retried; after the last retry the correction fails."""
    calls = []

    def flaky(point: str) -> None:
        if point == "before_rewrite":
            calls.append(point)
            raise OSError("disk went away")

    before = current_versions()
    appeal_id = confirm(approve(corpus_account, "remove")).id
    faults.test_hook = flaky
    try:
        drain()
    finally:
        faults.test_hook = None
    assert len(calls) == 3  # the first attempt and two retries (APPEALS_RETRY_INTERVALS=0,0)
    correction = db.session.scalar(select(Correction))
    assert correction.status == "failed" and "OSError: disk went away" in correction.error
    assert _reload(Appeal, appeal_id).status == "correction_failed"
    assert current_versions() == before


def test_a_transient_failure_then_success_publishes_once(corpus_account, approve, confirm, drain, fast):
    """One failed attempt, then the retry succeeds: one release per dataset, appeal corrected."""
    calls = []

    def once(point: str) -> None:
        if point == "mid_publish" and not calls:
            calls.append(point)
            raise ConnectionError("network blip")

    before = current_versions()
    touched = _footprint_datasets(corpus_account.user_id)
    appeal_id = confirm(approve(corpus_account, "rehash")).id
    faults.test_hook = once
    try:
        drain()
    finally:
        faults.test_hook = None
    assert calls == ["mid_publish"]
    assert _reload(Appeal, appeal_id).status == "corrected"
    assert current_versions() == {**before, **{name: before[name] + 1 for name in touched}}


@pytest.mark.parametrize("role, allowed", [("reviewer", False), ("senior", False), ("admin", True)])
def test_only_an_admin_may_retry(corpus_account, approve, confirm, drain, fast, staff, role, allowed):
    """Retrying a failed correction is an admin's action; others are refused and nothing changes."""
    from appeals.services.errors import Forbidden

    confirm(approve(corpus_account))
    correction = db.session.scalar(select(Correction))
    correction.status = "failed"
    correction.error = "simulated"
    db.session.commit()
    if allowed:
        corrections.retry(correction.id, actor_of(staff[role]))
        assert _reload(Correction, correction.id).status == "queued"
    else:
        with pytest.raises(Forbidden):
            corrections.retry(correction.id, actor_of(staff[role]))
        assert _reload(Correction, correction.id).status == "failed"


def test_retry_refuses_unknown_and_unfailed_corrections(corpus_account, approve, confirm, fast, staff):
    """Retry of a missing correction is 404, of a queued one 409; a non-staff actor is refused."""
    from appeals.services.errors import Conflict, NotFound, Unauthorized

    confirm(approve(corpus_account))
    correction = db.session.scalar(select(Correction))
    admin = actor_of(staff["admin"])
    with pytest.raises(NotFound):
        corrections.retry(correction.id + 1000, admin)
    with pytest.raises(Conflict):
        corrections.retry(correction.id, admin)
    with pytest.raises(Unauthorized):
        corrections.retry(correction.id, corrections.WORKER)
    assert db.session.get(Correction, correction.id).status == "queued"
