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


# Each status set, as SPEC's words define it.
SETS = {
    "FINAL": {"corrected", "denied", "withdrawn"},
    "OPEN": {"filed", "in_review", "info_requested", "escalated", "approved", "correction_queued", "correcting",
             "correction_failed"},
    "WAITING_FOR_STAFF": {"filed", "in_review", "escalated", "approved"},
    "WAITING_FOR_OWNER": {"info_requested"},
    "IN_CORRECTION": {"correction_queued", "correcting", "correction_failed"},
    "UNDECIDED": {"filed", "in_review", "info_requested", "escalated"},
    "CLAIMABLE": {"filed", "in_review", "info_requested", "escalated"},
    "SENIOR_ONLY": {"escalated"},
    "DECIDED": {"correction_queued", "correcting", "corrected", "correction_failed", "denied"},
}


def test_the_status_sets_are_the_specification():
    assert len(table.STATUSES) == len(set(table.STATUSES)) == 11
    for name, members in SETS.items():
        value = getattr(table, name)
        assert set(value) == members and len(value) == len(members), name


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


# What owners read for each status, in English (the source language): SPEC's words for the table's texts.
TITLES = {
    "filed": "Filed",
    "in_review": "In review",
    "info_requested": "Information requested",
    "escalated": "Escalated",
    "approved": "Approved, awaiting confirmation",
    "correction_queued": "Correction queued",
    "correcting": "Correcting",
    "corrected": "Corrected",
    "correction_failed": "Correction delayed",
    "denied": "Denied",
    "withdrawn": "Withdrawn",
}


def test_each_status_has_its_title_and_explanation():
    assert set(TITLES) == set(table.STATUSES)
    for status, title in TITLES.items():
        assert table.title(status) == title
        explanation = table.explanation(status)
        assert explanation == str(table.STATUS_TEXT[status][1]) and explanation != title
    assert table.explanation("withdrawn") == "You withdrew this appeal."


# --- what the state machine records: the event, the audit entry, the mail, the timeline ------------

SNAPSHOT_KEYS = {"status", "version", "assigned_to_id", "decision_remedy", "decision_reason_code",
                 "approved_by_id", "confirmed_by_id"}


def _audit_entries(appeal) -> list[AuditEntry]:
    return db.session.scalars(select(AuditEntry).where(AuditEntry.object_id == str(appeal.id))
                              .order_by(AuditEntry.id)).all()


def test_a_move_records_who_why_and_the_state_before_and_after(blank_appeal, make_staff):
    staff = make_staff("mover@example.org", role="senior")
    actor = Actor("staff", staff.id, "mover@example.org")
    appeal = blank_appeal("in_review")
    appeal.assigned_to_id, appeal.decision_remedy, appeal.decision_reason_code = staff.id, "hash", "not_io"
    appeal.approved_by_id = staff.id
    db.session.commit()
    version = appeal.version
    event = appeals.transition(appeal, "approved", actor, "appeal.approve", public_note="Looks right.",
                               data={"remedy": "hash"})
    db.session.commit()
    assert (event.actor_kind, event.actor_id, event.public_note, event.data) == (
        "staff", staff.id, "Looks right.", {"remedy": "hash"})
    [entry] = _audit_entries(appeal)
    assert (entry.action, entry.object_type, entry.object_id, entry.actor_id) == (
        "appeal.approve", "appeal", str(appeal.id), staff.id)
    common = {"assigned_to_id": staff.id, "decision_remedy": "hash", "decision_reason_code": "not_io",
              "approved_by_id": staff.id, "confirmed_by_id": None}
    assert entry.before == {"status": "in_review", "version": version, **common}
    assert entry.after == {"status": "approved", "version": appeal.version, **common}
    assert appeal.version == version + 1
    assert set(appeals.snapshot(appeal)) == SNAPSHOT_KEYS


def test_a_caller_may_give_the_state_before_its_own_changes(blank_appeal):
    appeal = blank_appeal("in_review")
    before = appeals.snapshot(appeal)
    appeal.decision_remedy = "hash"  # the caller's own change, made before the move
    appeals.transition(appeal, "approved", Actor("staff", None, "t"), "appeal.approve", before=before)
    db.session.commit()
    [entry] = _audit_entries(appeal)
    assert entry.before == before and entry.before["decision_remedy"] is None
    assert entry.after["decision_remedy"] == "hash"


def test_filing_records_no_state_before_and_the_appeals_own_time(blank_appeal):
    appeal = blank_appeal(None)
    appeal.created_at = filed_at = utcnow() - timedelta(days=3)
    event = appeals.transition(appeal, "filed", Actor("account", appeal.account_id, "owner"), "appeal.file")
    db.session.commit()
    assert appeal.id is not None and event.created_at == filed_at
    [entry] = _audit_entries(appeal)
    assert entry.before is None and entry.after["status"] == "filed"
    # Later moves carry their own time, not the appeal's.
    later = appeals.transition(appeal, "in_review", Actor("staff", None, "t"), "appeal.claim")
    db.session.commit()
    assert later.created_at > filed_at + timedelta(days=2)
    assert _audit_entries(appeal)[1].before["status"] == "filed"


def test_a_refused_move_says_from_what_to_what(blank_appeal):
    with pytest.raises(Conflict, match=r"^An appeal that is new cannot become in_review\.$"):
        appeals.transition(blank_appeal(None), "in_review", Actor("staff", None, "t"), "test.move")
    with pytest.raises(Conflict, match=r"^An appeal that is denied cannot become in_review\.$"):
        appeals.transition(blank_appeal("denied"), "in_review", Actor("staff", None, "t"), "test.move")


def test_a_filed_appeal_is_mailed_when_a_reviewer_first_starts(blank_appeal):
    """The first claim is mailed even though the filing's own event came before it."""
    appeal = blank_appeal(None)
    owner = Actor("account", appeal.account_id, "owner")
    staff = Actor("staff", None, "t")
    counts = []
    for move, actor in (("filed", owner), ("in_review", staff), ("filed", staff), ("in_review", staff)):
        before = _count(OutboxMessage)
        appeals.transition(appeal, move, actor, "test.move")
        db.session.commit()
        counts.append(_count(OutboxMessage) - before)
    assert counts == [1, 1, 0, 0]
    subjects = db.session.scalars(select(OutboxMessage.subject).order_by(OutboxMessage.id)).all()
    assert subjects == [f"Your appeal #{appeal.id}: Filed", f"Your appeal #{appeal.id}: In review"]


def test_check_version_refuses_a_stale_view(blank_appeal):
    appeal = blank_appeal("filed")
    for fresh in (None, appeal.version, str(appeal.version)):
        appeals.check_version(appeal, fresh)  # no error
    for stale in (appeal.version - 1, appeal.version + 1, str(appeal.version + 1)):
        with pytest.raises(Conflict) as refused:
            appeals.check_version(appeal, stale)
        assert refused.value.code == "stale_version"
        assert refused.value.message.startswith("This appeal changed since you loaded it.")


def test_clear_claim_and_record_action(blank_appeal, make_staff):
    staff = make_staff("holder@example.org")
    appeal = blank_appeal("in_review")
    before = appeals.snapshot(appeal)
    appeal.assigned_to_id, appeal.claimed_at, appeal.claim_touched_at = staff.id, utcnow(), utcnow()
    appeals.record_action(appeal, Actor("staff", staff.id, "holder"), "appeal.claim", before)
    db.session.commit()
    [entry] = _audit_entries(appeal)
    assert (entry.action, entry.object_type, entry.object_id) == ("appeal.claim", "appeal", str(appeal.id))
    assert entry.before == before and entry.after == appeals.snapshot(appeal)
    assert entry.after["assigned_to_id"] == staff.id and entry.after["version"] == before["version"] + 1
    appeals.clear_claim(appeal)
    assert (appeal.assigned_to_id, appeal.claimed_at, appeal.claim_touched_at) == (None, None, None)
    db.session.rollback()


def test_the_timeline_shows_owners_only_what_is_theirs(blank_appeal, make_staff):
    """Events and messages in time order; owners see 'you', no staff ids and only the owner's data fields."""
    from appeals.models import Message

    staff = make_staff("writer@example.org")
    t0 = utcnow().replace(microsecond=0) - timedelta(hours=5)
    appeal = blank_appeal(None)
    appeal.created_at = t0
    appeals.transition(appeal, "filed", Actor("account", appeal.account_id, "owner"), "appeal.file")
    claimed = appeals.transition(appeal, "in_review", Actor("staff", staff.id, "w"), "appeal.claim",
                                 data={"internal": 1})
    claimed.created_at = t0 + timedelta(hours=1)
    decided = appeals.transition(appeal, "approved", Actor("staff", staff.id, "w"), "appeal.approve",
                                 public_note="Approved.",
                                 data={"remedy": "hash", "reason_code": "not_io", "releases": {"d": 2}, "x": 1})
    decided.created_at = t0 + timedelta(hours=4)
    db.session.add_all([
        Message(appeal_id=appeal.id, author_kind="account", body="Please look.", created_at=t0 + timedelta(hours=2)),
        Message(appeal_id=appeal.id, author_kind="staff", author_staff_id=staff.id, body="Looking.",
                created_at=t0 + timedelta(hours=3)),
    ])
    db.session.commit()

    def at(hours):
        return (t0 + timedelta(hours=hours)).isoformat() + "Z"

    def status_item(hours, status, source, title, note, data, actor):
        return {"type": "status", "at": at(hours), "status": status, "from_status": source, "title": title,
                "note": note, "data": data, "actor": actor}

    owner_view = [
        status_item(0, "filed", None, "Filed", None, None, "account"),
        status_item(1, "in_review", "filed", "In review", None, None, "staff"),
        {"type": "message", "at": at(2), "from": "you", "body": "Please look."},
        {"type": "message", "at": at(3), "from": "staff", "body": "Looking."},
        status_item(4, "approved", "in_review", "Approved, awaiting confirmation", "Approved.",
                    {"remedy": "hash", "reason_code": "not_io", "releases": {"d": 2}}, "staff"),
    ]
    assert appeals.timeline(appeal, for_owner=True) == owner_view
    staff_view = [
        {**status_item(0, "filed", None, "Filed", None, None, "account"), "actor_id": appeal.account_id},
        {**status_item(1, "in_review", "filed", "In review", None, {"internal": 1}, "staff"), "actor_id": staff.id},
        {"type": "message", "at": at(2), "from": "account", "body": "Please look.", "author_staff_id": None},
        {"type": "message", "at": at(3), "from": "staff", "body": "Looking.", "author_staff_id": staff.id},
        {**status_item(4, "approved", "in_review", "Approved, awaiting confirmation", "Approved.",
                       {"remedy": "hash", "reason_code": "not_io", "releases": {"d": 2}, "x": 1}, "staff"),
         "actor_id": staff.id},
    ]
    assert appeals.timeline(appeal, for_owner=False) == staff_view


@pytest.mark.parametrize("data, shown", [
    (None, None),
    ({}, None),
    ({"internal": 1}, None),
    ({"releases": {"d": 1}}, {"releases": {"d": 1}}),
    ({"remedy": "remove", "x": 2}, {"remedy": "remove"}),
    ({"reason_code": "other"}, {"reason_code": "other"}),
])
def test_owners_see_only_releases_remedy_and_reason(blank_appeal, data, shown):
    appeal = blank_appeal("filed")
    appeals.transition(appeal, "in_review", Actor("staff", None, "t"), "appeal.claim", data=data)
    db.session.commit()
    assert appeals.timeline(appeal, for_owner=True)[-1]["data"] == shown


def test_entries_of_the_same_instant_keep_the_order_of_their_ids(blank_appeal):
    """Ties in time are broken by id, not by where the database happens to keep the rows.

    The later ids are written first: PostgreSQL then returns them first unless the query
    orders by id (SQLite returns rowid order either way).
    """
    from appeals.models import Message

    appeal = blank_appeal("filed")
    instant = utcnow().replace(microsecond=0)
    top = 2_000_000_000  # far above any id the sequences hand out in a test run
    for offset, status in ((1, "info_requested"), (0, "in_review")):
        db.session.add(AppealEvent(id=top + offset, appeal_id=appeal.id, created_at=instant, status_from="filed",
                                   status_to=status, actor_kind="staff"))
        db.session.flush()
    for offset, body in ((1, "two"), (0, "one")):
        db.session.add(Message(id=top + offset, appeal_id=appeal.id, author_kind="account", body=body,
                               created_at=instant))
        db.session.flush()
    db.session.commit()
    items = appeals.timeline(appeal, for_owner=False)
    assert [(i["type"], i.get("status") or i["body"]) for i in items] == [
        ("status", "in_review"), ("status", "info_requested"), ("message", "one"), ("message", "two")]
