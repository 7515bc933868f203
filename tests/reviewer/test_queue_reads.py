"""Reading the queue writes nothing: expiry of claims and information requests is the worker's sweep's."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, func, select

from appeals import db, runtime
from appeals.db import utcnow
from appeals.models import Appeal, AuditEntry, OutboxMessage
from tests.reviewer.conftest import bearer, login, make_appeal, token_for


def _stale_appeals(owner, new_account, reviewer):
    """One appeal whose claim lapsed long ago, one whose request for information is overdue."""
    idle = runtime.settings().claim_idle_minutes
    claimed = make_appeal(owner, status="in_review", commit=False)
    claimed.assigned_to_id = reviewer.id
    claimed.claimed_at = claimed.claim_touched_at = utcnow() - timedelta(minutes=idle + 5)
    other = new_account("1000002", "quiet_owner", email="quiet@example.org")
    waiting = make_appeal(other, status="info_requested", commit=False)
    waiting.info_requested_at = utcnow() - timedelta(days=20)
    waiting.info_due_at = utcnow() - timedelta(days=6)
    db.session.commit()
    return claimed.id, waiting.id


def _state(ids):
    db.session.expire_all()
    rows = [db.session.get(Appeal, i) for i in ids]
    return ([(a.status, a.assigned_to_id, a.version) for a in rows],
            db.session.scalar(select(func.count()).select_from(OutboxMessage)),
            db.session.scalar(select(func.count()).select_from(AuditEntry)))


def test_a_get_of_the_queue_page_or_api_commits_nothing(app, client, owner, new_account, reviewer, seeded):
    ids = _stale_appeals(owner, new_account, reviewer)
    login(client, reviewer)
    token = token_for(app.test_client(), reviewer)
    before = _state(ids)
    commits = []
    engine = db.session.get_bind()
    listener = lambda _conn: commits.append(1)  # noqa: E731 - counts every COMMIT sent to the database
    event.listen(engine, "commit", listener)
    try:
        page = client.get("/review/?status=all")
        api = client.get("/api/v1/queue?status=all", headers=bearer(token))
        unassigned = client.get("/api/v1/queue?assigned=unassigned", headers=bearer(token))
    finally:
        event.remove(engine, "commit", listener)
    assert page.status_code == 200 and api.status_code == 200 and unassigned.status_code == 200
    assert commits == []
    assert _state(ids) == before
    # The lapsed claim already reads as free; only the sweep records the expiry.
    assert ids[0] in {item["id"] for item in unassigned.get_json()["items"]}


def test_the_sweep_expires_what_the_queue_only_read(app, owner, new_account, reviewer, seeded):
    from workers import jobs

    ids = _stale_appeals(owner, new_account, reviewer)
    summary = jobs.sweep()
    assert summary["expired"] == {"info_requests": 1, "claims": 1}
    (claimed, waiting), mails, _audits = _state(ids)
    assert claimed[:2] == ("filed", None) and waiting[0] == "in_review"
    assert mails == 1  # the owner hears that the review continues; a lapsed claim is the team's business
