"""The review service: claims, decisions, four eyes, stale versions, expiry, and an audit entry per action."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from appeals import db, runtime
from appeals.db import utcnow
from appeals.models import Appeal, AppealEvent, AuditEntry, Correction, InternalNote, Message, OutboxMessage, Staff
from appeals.services import review
from appeals.services.errors import Conflict, Forbidden, Invalid
from tests.reviewer.conftest import actor, make_appeal


def audit_actions(appeal_id: int) -> list[str]:
    return list(db.session.scalars(
        select(AuditEntry.action).where(AuditEntry.object_type == "appeal", AuditEntry.object_id == str(appeal_id))
        .order_by(AuditEntry.id)))


def fresh(appeal_id: int) -> Appeal:
    return db.session.get(Appeal, appeal_id, populate_existing=True)


def test_claim_moves_a_filed_appeal_into_review_and_a_second_reviewer_gets_a_conflict(appeal, reviewer, reviewer2):
    """Claiming takes the appeal; another reviewer is refused with 409 naming the holder."""
    review.claim(reviewer, appeal.id, actor(reviewer))
    claimed = fresh(appeal.id)
    assert (claimed.status, claimed.assigned_to_id) == ("in_review", reviewer.id)
    with pytest.raises(Conflict, match="rita@review.example holds this appeal"):
        review.claim(reviewer2, appeal.id, actor(reviewer2))
    assert fresh(appeal.id).assigned_to_id == reviewer.id
    assert audit_actions(appeal.id) == ["appeal.claim"]


def test_an_idle_claim_expires_and_can_be_taken(appeal, reviewer, reviewer2):
    """After the configured idle time another reviewer may claim; the sweep also frees it."""
    review.claim(reviewer, appeal.id, actor(reviewer))
    idle = runtime.settings().claim_idle_minutes
    row = fresh(appeal.id)
    row.claim_touched_at = utcnow() - timedelta(minutes=idle + 1)
    db.session.commit()
    review.claim(reviewer2, appeal.id, actor(reviewer2))
    assert fresh(appeal.id).assigned_to_id == reviewer2.id

    row = fresh(appeal.id)
    row.claim_touched_at = utcnow() - timedelta(minutes=idle + 1)
    db.session.commit()
    assert review.expire_stale() == {"info_requests": 0, "claims": 1}
    row = fresh(appeal.id)
    assert (row.status, row.assigned_to_id) == ("filed", None)
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "appeal.claim_expired")).one()
    assert entry.actor_kind == "system" and entry.before["assigned_to_id"] == reviewer2.id


def test_release_by_holder_or_senior_only(appeal, reviewer, reviewer2, senior):
    """Only the holder or a senior releases; an undecided review returns to filed."""
    review.claim(reviewer, appeal.id, actor(reviewer))
    with pytest.raises(Forbidden):
        review.release(reviewer2, appeal.id, actor(reviewer2))
    review.release(senior, appeal.id, actor(senior))
    row = fresh(appeal.id)
    assert (row.status, row.assigned_to_id) == ("filed", None)
    assert audit_actions(appeal.id) == ["appeal.claim", "appeal.release"]


def test_claim_next_takes_the_oldest_unclaimed(owner, new_account, reviewer, reviewer2, seeded):
    """Claim next skips claimed and younger appeals, and returns None on an empty queue."""
    other = new_account("1000002", "other_acct")
    oldest = make_appeal(owner, age_days=5)
    middle = make_appeal(other, age_days=3)
    make_appeal(other, age_days=1)
    review.claim(reviewer2, oldest.id, actor(reviewer2))
    taken = review.claim_next(reviewer, actor(reviewer))
    assert taken.id == middle.id and taken.assigned_to_id == reviewer.id
    review.claim_next(reviewer, actor(reviewer))
    assert review.claim_next(reviewer, actor(reviewer)) is None


def test_escalated_appeals_are_for_seniors(appeal, reviewer, senior):
    """A reviewer escalates; reviewers can no longer claim it, a senior can and decides."""
    review.claim(reviewer, appeal.id, actor(reviewer))
    review.decide(reviewer, appeal.id, actor(reviewer), "escalate", statement="Possible state media; need a senior.")
    assert fresh(appeal.id).status == "escalated"
    note = db.session.scalars(select(InternalNote).where(InternalNote.appeal_id == appeal.id)).one()
    assert "state media" in note.body
    with pytest.raises(Forbidden):
        review.claim(reviewer, appeal.id, actor(reviewer))
    assert review.claim_next(reviewer, actor(reviewer)) is None
    review.claim(senior, appeal.id, actor(senior))
    review.decide(senior, appeal.id, actor(senior), "deny", reason_code="correctly_included",
                  statement="The account posted the campaign's material on schedule.")
    assert fresh(appeal.id).status == "denied"


def test_deciding_needs_the_claim(appeal, reviewer, reviewer2):
    review.claim(reviewer, appeal.id, actor(reviewer))
    with pytest.raises(Forbidden, match="Claim this appeal"):
        review.decide(reviewer2, appeal.id, actor(reviewer2), "deny", reason_code="correctly_included",
                      statement="No.")


def test_deny_requires_an_active_reason_code_and_tells_the_owner_why(appeal, reviewer):
    """A denial without a usable code is refused and changes nothing; the statement reaches the owner."""
    review.claim(reviewer, appeal.id, actor(reviewer))
    version = fresh(appeal.id).version
    with pytest.raises(Invalid) as missing:
        review.decide(reviewer, appeal.id, actor(reviewer), "deny", statement="Not convinced.")
    assert "reason_code" in missing.value.fields
    with pytest.raises(Invalid):
        review.decide(reviewer, appeal.id, actor(reviewer), "deny", reason_code="authentic_account",
                      statement="Not convinced.")  # an approval code
    db.session.rollback()
    assert fresh(appeal.id).version == version and fresh(appeal.id).status == "in_review"

    review.decide(reviewer, appeal.id, actor(reviewer), "deny", reason_code="evidence_insufficient",
                  statement="The screenshots do not show the dates you mention.")
    row = fresh(appeal.id)
    assert (row.status, row.decision_reason_code, row.assigned_to_id) == ("denied", "evidence_insufficient", None)
    event = db.session.scalars(select(AppealEvent).where(AppealEvent.status_to == "denied")).one()
    assert "screenshots do not show" in event.public_note and "Reason:" in event.public_note
    mail = db.session.scalars(select(OutboxMessage).where(OutboxMessage.subject.contains("Denied"))).one()
    assert "screenshots do not show" in mail.body


def test_templates_with_unfilled_placeholders_cannot_be_sent(appeal, reviewer):
    """A statement or message still holding {placeholders} is refused."""
    review.claim(reviewer, appeal.id, actor(reviewer))
    with pytest.raises(Invalid, match=r"\{explanation\}"):
        review.decide(reviewer, appeal.id, actor(reviewer), "deny", reason_code="evidence_insufficient",
                      statement="We reviewed it: {explanation}")
    with pytest.raises(Invalid, match=r"\{question\}"):
        review.send_message(reviewer, appeal.id, actor(reviewer), "Please tell us {question}")
    assert fresh(appeal.id).status == "in_review"


def test_request_info_messages_the_owner_and_expires_back_to_review(appeal, reviewer):
    """The question becomes a message and an email; unanswered, the appeal returns to review."""
    review.claim(reviewer, appeal.id, actor(reviewer))
    review.decide(reviewer, appeal.id, actor(reviewer), "request_info",
                  statement="When did you lose access to the account?")
    row = fresh(appeal.id)
    days = runtime.settings().info_request_days
    assert row.status == "info_requested" and row.assigned_to_id is None
    assert timedelta(days=days) - (row.info_due_at - row.info_requested_at) < timedelta(seconds=1)
    message = db.session.scalars(select(Message).where(Message.appeal_id == appeal.id)).one()
    assert (message.author_kind, message.author_staff_id) == ("staff", reviewer.id)
    assert db.session.scalars(select(OutboxMessage).where(OutboxMessage.body.contains("lose access"))).first()

    assert review.expire_stale()["info_requests"] == 0  # not due yet
    assert review.expire_stale(now=row.info_due_at + timedelta(minutes=1))["info_requests"] == 1
    assert fresh(appeal.id).status == "in_review"
    assert "appeal.info_request_expired" in audit_actions(appeal.id)


def test_stale_version_is_refused_and_changes_nothing(appeal, reviewer, seeded):
    """An action based on an old version of the appeal gets a conflict, not an overwrite."""
    loaded = fresh(appeal.id).version
    review.claim(reviewer, appeal.id, actor(reviewer), expected_version=loaded)
    with pytest.raises(Conflict) as stale:
        review.decide(reviewer, appeal.id, actor(reviewer), "approve", remedy="remove",
                      statement="Authentic bakery.", expected_version=loaded)
    assert stale.value.code == "stale_version" and stale.value.status == 409
    db.session.rollback()
    assert fresh(appeal.id).status == "in_review"


def test_four_eyes_approver_and_reviewers_cannot_confirm(appeal, reviewer, senior, senior2):
    """The approver cannot confirm, a reviewer cannot confirm; another senior can, and a correction is queued."""
    review.claim(senior, appeal.id, actor(senior))
    review.decide(senior, appeal.id, actor(senior), "approve", remedy="rehash", reason_code="authentic_account",
                  statement="The account is a real bakery.")
    row = fresh(appeal.id)
    assert (row.status, row.approved_by_id, row.decision_remedy) == ("approved", senior.id, "rehash")
    with pytest.raises(Forbidden, match="approver cannot confirm"):
        review.confirm(senior, appeal.id, actor(senior))
    with pytest.raises(Forbidden):
        review.confirm(reviewer, appeal.id, actor(reviewer))
    db.session.rollback()
    assert fresh(appeal.id).status == "approved"
    assert db.session.scalar(select(Correction).where(Correction.appeal_id == appeal.id)) is None

    review.confirm(senior2, appeal.id, actor(senior2), expected_version=fresh(appeal.id).version)
    row = fresh(appeal.id)
    assert (row.status, row.confirmed_by_id) == ("correction_queued", senior2.id)
    correction = db.session.scalars(select(Correction).where(Correction.appeal_id == appeal.id)).one()
    assert (correction.remedy, correction.user_id) == ("rehash", "1000001")
    assert audit_actions(appeal.id)[-1] == "appeal.confirm"


def test_send_back_returns_an_approval_to_review(appeal, reviewer, senior):
    review.claim(reviewer, appeal.id, actor(reviewer))
    review.decide(reviewer, appeal.id, actor(reviewer), "approve", remedy="remove", statement="Looks authentic.")
    with pytest.raises(Invalid):
        review.send_back(senior, appeal.id, actor(senior), "")
    review.send_back(senior, appeal.id, actor(senior), "Check the referring rows first.")
    row = fresh(appeal.id)
    assert (row.status, row.approved_by_id, row.decision_remedy) == ("in_review", None, None)
    assert "referring rows" in db.session.scalars(select(InternalNote.body)).one()


def test_every_action_writes_an_audit_entry(appeal, reviewer, senior, senior2):
    """Claim, note, message, request, reply-expiry, approve, send back, approve, confirm: each audited with IP."""
    a = actor(reviewer)
    review.claim(reviewer, appeal.id, a)
    review.add_note(reviewer, appeal.id, a, "Checked the profile.")
    review.send_message(reviewer, appeal.id, a, "Thanks, we are looking at it.")
    review.decide(reviewer, appeal.id, a, "request_info", statement="Which shop?")
    review.expire_stale(now=fresh(appeal.id).info_due_at + timedelta(seconds=1))
    review.claim(reviewer, appeal.id, a)
    review.decide(reviewer, appeal.id, a, "approve", remedy="remove", statement="Authentic.")
    review.send_back(senior, appeal.id, actor(senior), "Use rehash.")
    review.claim(reviewer, appeal.id, a)
    review.decide(reviewer, appeal.id, a, "escalate", statement="Unsure.")
    review.claim(senior, appeal.id, actor(senior))
    review.decide(senior, appeal.id, actor(senior), "approve", remedy="rehash", statement="Authentic.")
    review.confirm(senior2, appeal.id, actor(senior2))
    assert audit_actions(appeal.id) == [
        "appeal.claim", "appeal.note", "appeal.message", "appeal.request_info", "appeal.info_request_expired",
        "appeal.claim", "appeal.approve", "appeal.send_back", "appeal.claim", "appeal.escalate",
        "appeal.claim", "appeal.approve", "appeal.confirm",
    ]
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.object_type == "appeal")).all()
    for entry in entries:
        assert entry.after is not None and entry.created_at is not None
        if entry.actor_kind == "staff":
            assert entry.ip == "127.0.0.1" and entry.before is not None
    approve = [e for e in entries if e.action == "appeal.approve"][-1]
    assert (approve.before["status"], approve.after["status"]) == ("escalated", "approved")


def test_two_concurrent_claims_have_exactly_one_winner(settings, owner, seeded, new_staff):
    """Threads race to claim the same appeal (on PostgreSQL when configured): exactly one wins."""
    staff = [new_staff(f"racer{i}@review.example", "reviewer") for i in range(4)]
    for attempt in range(3):
        target = make_appeal(owner)
        barrier = threading.Barrier(len(staff))
        results: list = []

        def race(member_id: int) -> None:
            try:
                member = db.session.get(Staff, member_id)
                barrier.wait()
                review.claim(member, target.id, actor(member))
                results.append("won")
            except Conflict:
                results.append("lost")
            finally:
                db.session.remove()

        threads = [threading.Thread(target=race, args=(m.id,)) for m in staff]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(results) == ["lost"] * (len(staff) - 1) + ["won"], results
        row = fresh(target.id)
        assert row.assigned_to_id in {m.id for m in staff} and row.status == "in_review"
        assert len([a for a in audit_actions(target.id) if a == "appeal.claim"]) == 1
