"""`appeals demo`: one command brings up Redis, a worker and the web app; a confirmation gets corrected; Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta

import psutil
import pytest
import redis
from sqlalchemy import select

from tests.conftest import _free_port
from tests.pipeline.conftest import ENTRY

pytestmark = pytest.mark.slow


def _wait_http_200(url: str, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("the demo exited before serving:\n" + process.stdout.read()[-4000:])
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} never answered 200")


def _confirm_an_appeal(home, redis_url: str) -> int:
    """As the demo's senior: confirm an approval of a seeded owner's appeal (through the services)."""
    from appeals import db, runtime
    from appeals.db import utcnow
    from appeals.models import Account, Appeal, Staff
    from appeals.services import review
    from appeals.services.audit import Actor
    from config import Settings

    runtime.bootstrap(Settings.from_env({"APPEALS_MODE": "demo", "APPEALS_HOME": str(home),
                                         "APPEALS_REDIS_URL": redis_url}))
    owner = db.session.scalars(select(Account).where(Account.email.like("%@demo.test")).order_by(Account.id)).first()
    reviewer = db.session.scalar(select(Staff).where(Staff.email == "reviewer@demo.test"))
    senior = db.session.scalar(select(Staff).where(Staff.email == "senior@demo.test"))
    now = utcnow()
    appeal = Appeal(account_id=owner.id, status="approved", reason="included_in_error", statement="Not me.",
                    contact_email=owner.email, due_at=now + timedelta(days=14), decided_at=now,
                    decision_remedy="rehash", decision_reason_code="included_in_error", approved_by_id=reviewer.id)
    db.session.add(appeal)
    db.session.commit()
    review.confirm(senior, appeal.id, Actor("staff", senior.id, senior.email))
    return appeal.id


def _appeal_status(appeal_id: int) -> str:
    from appeals import db
    from appeals.models import Appeal

    db.session.remove()
    return db.session.get(Appeal, appeal_id).status


def _owner_mail(appeal_id: int) -> list[tuple[str, str]]:
    from appeals import db
    from appeals.models import OutboxMessage

    db.session.remove()
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.subject.contains(f"#{appeal_id}:"))
                              .order_by(OutboxMessage.id)).all()
    return [(m.subject.split(": ", 1)[1], m.status) for m in rows if m.status != "merged"]


def test_demo_serves_corrects_a_confirmation_and_stops_everything_on_ctrl_c(tmp_path):
    """The demo comes up on a free port, corrects a confirmed appeal with no manual step, and SIGINT stops all."""
    port = _free_port()
    home = tmp_path / "demo-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPEALS_")}
    env.update(APPEALS_HOME=str(home), APPEALS_SWEEP_SECONDS="2", APPEALS_MAIL_HOLD_SECONDS="2")
    demo = subprocess.Popen([sys.executable, "-c", ENTRY, "demo", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_http_200(f"http://127.0.0.1:{port}/", demo)
        children = psutil.Process(demo.pid).children(recursive=True)
        assert len(children) >= 3  # the worker, gunicorn's master and its workers
        redis_url = next(c.environ()["APPEALS_REDIS_URL"] for c in children if "APPEALS_REDIS_URL" in c.environ())
        redis_pid = redis.Redis.from_url(redis_url).info("server")["process_id"]

        appeal_id = _confirm_an_appeal(home, redis_url)
        deadline = time.monotonic() + 90
        while _appeal_status(appeal_id) != "corrected":
            assert time.monotonic() < deadline, f"still {_appeal_status(appeal_id)}"
            time.sleep(0.5)
        # The demo's worker delivers the mail: to the log and the outbox table, the last state included.
        while not _owner_mail(appeal_id) or _owner_mail(appeal_id)[-1] != ("Corrected", "logged"):
            assert time.monotonic() < deadline + 30, _owner_mail(appeal_id)
            time.sleep(0.5)
        assert {status for _subject, status in _owner_mail(appeal_id)} == {"logged"}
    finally:
        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=90)
    assert demo.returncode == 0, output[-3000:]
    assert "Appeals demo running at" in output and "senior@demo.test" in output
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, [p.pid for p in alive]
    deadline = time.monotonic() + 20
    while psutil.pid_exists(redis_pid) and psutil.Process(redis_pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the embedded Redis outlived the demo"
        time.sleep(0.2)
