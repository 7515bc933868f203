"""Fixtures of the pipeline tests: fast timings, staff, confirmed appeals, workers in and out of process."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from typing import NamedTuple

import pytest

from appeals import db, runtime
from appeals.db import utcnow
from appeals.models import Appeal, Staff
from appeals.services.audit import Actor
from config import Settings
from tests.conftest import users_of, work_in_process

# Short timings so retries, lock expiry and sweeps happen within a test.
FAST = {
    "APPEALS_LOCK_SECONDS": "2",
    "APPEALS_LOCK_WAIT_SECONDS": "4",
    "APPEALS_RETRY_INTERVALS": "0,0",
    "APPEALS_SWEEP_SECONDS": "1",
}
ENTRY = "from appeals.cli import main; main()"


@pytest.fixture
def fast(settings):
    """Fast pipeline timings in this process's settings (subprocesses get them through `worker_env`)."""
    timed = Settings.from_env({"APPEALS_MODE": "test", **FAST})
    runtime.bootstrap(replace(runtime.settings(), sweep_seconds=timed.sweep_seconds,
                              lock_seconds=timed.lock_seconds, lock_wait_seconds=timed.lock_wait_seconds,
                              retry_intervals=timed.retry_intervals))
    return FAST


@pytest.fixture
def worker_env(settings_env, fast) -> dict:
    """The environment of a worker subprocess on the test settings, with fast timings."""
    return {**settings_env, **FAST}


class StaffRef(NamedTuple):
    """A staff member as plain data: sessions come and go around jobs run in this thread."""

    id: int
    email: str
    role: str


@pytest.fixture
def staff(make_staff):
    """A reviewer (the approver), two seniors and an admin."""
    members = {}
    for key, role in (("reviewer", "reviewer"), ("senior", "senior"), ("senior2", "senior"), ("admin", "admin")):
        member = make_staff(f"{key}@example.org", role)
        members[key] = StaffRef(member.id, member.email, member.role)
    return members


def actor_of(member) -> Actor:
    """The audit actor of a staff member."""
    return Actor("staff", member.id, member.email)


@pytest.fixture
def approve(staff):
    """Put an approved appeal (remedy chosen by the reviewer) on `account`; returns the appeal."""

    def make(account, remedy: str = "remove") -> Appeal:
        now = utcnow()
        appeal = Appeal(
            account_id=account.id, status="approved", reason="included_in_error",
            statement="This is my personal account; I have never worked for anyone.",
            contact_email=account.email or f"{account.screen_name}@example.org", due_at=now + timedelta(days=14),
            decided_at=now, decision_remedy=remedy, decision_reason_code="included_in_error",
            approved_by_id=staff["reviewer"].id,
        )
        db.session.add(appeal)
        db.session.commit()
        return appeal

    return make


@pytest.fixture
def confirm(staff):
    """A senior (not the approver) confirms an approval through the reviewer's service."""
    from appeals.services import review

    def run(appeal: Appeal | int, senior=None) -> Appeal:
        senior = db.session.get(Staff, (senior or staff["senior"]).id)
        appeal_id = appeal if isinstance(appeal, int) else appeal.id
        return review.confirm(senior, appeal_id, actor_of(senior))

    return run


@pytest.fixture
def second_account(corpus, make_account):
    """An owner account for a user of the second synthetic dataset (not the corpus_account)."""
    rows = users_of(corpus[1])
    row = sorted(rows, key=lambda r: r["userid"])[len(rows) // 2]
    return make_account(row["userid"], row["user_screen_name"], email=f"{row['user_screen_name']}@example.org")


@pytest.fixture
def drain(redis_url):
    """Process every queued job in this process, like `appeals worker --burst` does (RQ's SimpleWorker)."""
    from workers import jobs, queues
    from workers.dispatch import mail_queue

    def run(sweep: bool = True) -> None:
        if sweep:
            jobs.sweep()
        connection = queues.connect()
        work_in_process([mail_queue(connection), queues.corrections_queue(connection)])

    return run


def run_cli(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `appeals ARGS...` in a subprocess with `env`."""
    return subprocess.run([sys.executable, "-c", ENTRY, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def current_versions() -> dict[str, int]:
    """dataset -> current version."""
    return {d.name: d.current_version for d in runtime.engine().list_datasets()}
