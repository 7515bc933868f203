"""THE status table, read as the specification: every allowed move, every refused move, who is mailed.

SPEC below is written out by hand, independently of appeals/status.py: the table must
match it exactly, and the state machine (`services.appeals.transition`) must do what it
says on a real database: allowed moves record an event, an audit entry and the mail
named; refused ones raise and write nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from appeals import db
from appeals import status as table
from appeals.db import utcnow
from appeals.models import Appeal, AppealEvent, AuditEntry, OutboxMessage
from appeals.services import appeals
from appeals.services.audit import Actor
from appeals.services.errors import Conflict

# from            to                   who is mailed
SPEC = """
-                 filed                owner
filed             in_review            owner, first time only
filed             withdrawn            owner
in_review         filed                nobody
in_review         info_requested       owner
in_review         escalated            owner
in_review         approved             owner
in_review         denied               owner
in_review         withdrawn            owner
info_requested    in_review            owner
info_requested    withdrawn            owner
escalated         info_requested       owner
escalated         approved             owner
escalated         denied               owner
escalated         withdrawn            owner
approved          correction_queued    owner
approved          in_review            owner
approved          withdrawn            owner
correction_queued correcting           owner
correction_queued corrected            owner
correction_queued correction_failed    owner
correcting        corrected            owner
correcting        correction_failed    owner
correction_failed correction_queued    owner
"""

WHO = {"owner": table.OWNER, "owner, first time only": table.OWNER_FIRST_TIME, "nobody": table.NOBODY}


def _spec() -> dict[tuple[str | None, str], str]:
    edges = {}
    for line in SPEC.strip().splitlines():
        source, target, who = line.split(None, 2)
        edges[(None if source == "-" else source, target)] = WHO[who]
    return edges


EDGES = _spec()
SOURCES = (None, *table.STATUSES)
ALLOWED = sorted(EDGES, key=str)
REFUSED = [(s, t) for s in SOURCES for t in table.STATUSES if (s, t) not in EDGES]


def test_the_table_is_the_specification():
    """Exactly the moves of SPEC are allowed, each mailing whom SPEC says; nothing else is."""
    assert table.EDGES == EDGES
    for source, target in ALLOWED:
        assert table.can_move(source, target), (source, target)
        assert table.mailed(source, target) == EDGES[(source, target)]
    for source, target in REFUSED:
        assert not table.can_move(source, target), (source, target)
        assert table.mailed(source, target) == table.NOBODY


def test_the_status_sets():
    """Final means no way out; every status is waiting for staff, for its owner, for the worker, or final."""
    assert table.FINAL == ("corrected", "denied", "withdrawn")
    assert all(not table.TRANSITIONS[s] for s in table.FINAL)
    assert set(table.OPEN) == set(table.STATUSES) - set(table.FINAL)
    parts = (table.WAITING_FOR_STAFF, table.WAITING_FOR_OWNER, table.IN_CORRECTION, table.FINAL)
    assert sorted(s for part in parts for s in part) == sorted(table.STATUSES)
    assert table.WAITING_FOR_OWNER == ("info_requested",)
    assert set(table.WAITING_FOR_STAFF) == {"filed", "in_review", "escalated", "approved"}
    # The owner may withdraw exactly while a person could still change the outcome.
    assert {s for s in table.STATUSES if table.can_move(s, "withdrawn")} == set(table.UNDECIDED) | {"approved"}
    assert set(table.DECIDED) == set(table.IN_CORRECTION) | {"corrected", "denied"}
    for status in table.STATUSES:
        title, explanation = table.STATUS_TEXT[status]
        assert title and explanation.endswith(".")


@pytest.fixture
def blank_appeal(make_account):
    """A factory of appeals in any status (or not yet filed), straight in the database."""
    account = make_account("4242", "table_owner", email="owner@example.org")

    def make(status: str | None) -> Appeal:
        now = utcnow()
        appeal = Appeal(account_id=account.id, status=status, reason="other", statement="Mine.",
                        contact_email="owner@example.org", created_at=now, due_at=now + timedelta(days=14))
        if status is not None:
            db.session.add(appeal)
            db.session.commit()
        return appeal

    return make


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_every_allowed_move_is_recorded_and_mailed_as_the_table_says(blank_appeal):
    actor = Actor("staff", None, "table test")
    for source, target in ALLOWED:
        appeal = blank_appeal(source)
        counts = (_count(AppealEvent), _count(AuditEntry), _count(OutboxMessage))
        event = appeals.transition(appeal, target, actor, "test.move")
        db.session.commit()
        assert (appeal.status, event.status_from, event.status_to) == (target, source, target)
        mails = _count(OutboxMessage) - counts[2]
        assert (_count(AppealEvent) - counts[0], _count(AuditEntry) - counts[1]) == (1, 1), (source, target)
        assert mails == (0 if EDGES[(source, target)] == table.NOBODY else 1), (source, target)


def test_a_reviewer_starting_is_mailed_once_however_often_the_claim_comes_and_goes(blank_appeal):
    actor = Actor("staff", None, "table test")
    appeal = blank_appeal("filed")
    mailed = []
    for _ in range(3):
        before = _count(OutboxMessage)
        appeals.transition(appeal, "in_review", actor, "test.claim")
        mailed.append(_count(OutboxMessage) - before)
        appeals.transition(appeal, "filed", actor, "test.release")
        db.session.commit()
    assert mailed == [1, 0, 0]


def test_every_refused_move_raises_and_writes_nothing(blank_appeal):
    actor = Actor("staff", None, "table test")
    for source, target in REFUSED:
        appeal = blank_appeal(source)
        counts = (_count(AppealEvent), _count(AuditEntry), _count(OutboxMessage))
        with pytest.raises(Conflict) as refused:
            appeals.transition(appeal, target, actor, "test.move")
        assert refused.value.code == "invalid_transition"
        db.session.rollback()
        assert appeal.status == source
        assert (_count(AppealEvent), _count(AuditEntry), _count(OutboxMessage)) == counts, (source, target)
