"""`appeals corrections`, `appeals worker`, `appeals serve` from the command line."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from appeals import db, runtime
from appeals.models import AuditEntry, Correction, CorrectionRun
from tests.pipeline.conftest import current_versions, run_cli


@pytest.mark.parametrize("args, message", [
    ([], "at least one account"),
    (["--remove", "12", "--rehash", "12", "--reason", "x"], "both removed and re-hashed"),
    (["--remove", "12"], "--reason is required"),
    (["--remove", "12abc", "--reason", "x"], "User ids are numbers"),
])
def test_corrections_apply_refuses_bad_input_and_changes_nothing(corpus, worker_env, args, message):
    """Bad input: a clear message, exit status 2, no release, no run."""
    before = current_versions()
    result = run_cli(worker_env, "corrections", "apply", *args)
    assert result.returncode == 2 and message in result.stderr
    assert current_versions() == before
    assert db.session.query(CorrectionRun).count() == 0


def test_corrections_apply_publishes_and_audits_as_operator(corpus, corpus_account, second_account, worker_env):
    """The operator path publishes one release per affected dataset, audited with the reason; twice is once."""
    removed, rehashed = corpus_account.user_id, second_account.user_id
    touched = {e.dataset for uid in (removed, rehashed) for e in runtime.engine().footprint(uid)}
    before = current_versions()
    args = ("corrections", "apply", "--remove", removed, "--rehash", rehashed, "--reason", "court order 12")
    result = run_cli(worker_env, *args, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    outcome = json.loads(result.stdout)
    expected = {name: before[name] + 1 for name in touched}
    assert outcome["releases"] == expected and current_versions() == {**before, **expected}

    again = run_cli(worker_env, *args)
    assert again.returncode == 0 and "already published" in again.stdout
    assert current_versions() == {**before, **expected}

    db.session.remove()
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "correction_run.operator"))
    assert entry.actor_kind == "operator" and entry.after["reason"] == "court order 12"
    run = db.session.get(CorrectionRun, outcome["run"])
    assert run.status == "done" and run.releases == expected


def test_corrections_retry_and_list_commands(corpus_account, approve, confirm, worker_env):
    """An operator can list corrections and retry a failed one."""
    confirm(approve(corpus_account))
    correction = db.session.scalar(select(Correction))
    correction.status, correction.error = "failed", "simulated"
    db.session.commit()
    listed = run_cli(worker_env, "corrections", "list", "--status", "failed")
    assert json.loads(listed.stdout)["id"] == correction.id
    retried = run_cli(worker_env, "corrections", "retry", str(correction.id))
    assert retried.returncode == 0, retried.stderr
    missing = run_cli(worker_env, "corrections", "retry", "999999")
    assert missing.returncode == 1 and "No such correction" in missing.stderr
    db.session.remove()
    assert db.session.get(Correction, correction.id).status == "queued"


def test_worker_burst_with_nothing_to_do_exits_cleanly(settings, worker_env):
    """`appeals worker --burst` on an empty queue sweeps, finds nothing, and exits 0."""
    result = run_cli(worker_env, "worker", "--burst")
    assert result.returncode == 0, result.stderr[-2000:]


def test_serve_refuses_to_start_without_production_settings(tmp_path, worker_env):
    """`appeals serve` in production mode without secrets stops with a clear message."""
    env = {k: v for k, v in worker_env.items() if k not in ("APPEALS_SECRET_KEY", "APPEALS_HASH_KEY")}
    env.update(APPEALS_MODE="production", APPEALS_HOME=str(tmp_path / "prod"))
    result = run_cli(env, "serve", "--port", "5999", timeout=60)
    assert result.returncode != 0 and "APPEALS_SECRET_KEY" in result.stderr
