"""Filing, replying and withdrawing through the filing service: the rules and what they record."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from appeals import db, runtime
from appeals.db import utcnow
from appeals.models import Appeal, AppealEvent, AuditEntry, Message, OutboxMessage
from appeals.services import filing, footprint
from appeals.services.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from tests.owner.conftest import GOOD_APPEAL, file_for, move, owner_actor


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_filing_covers_every_dataset_and_records_everything(owner_a, deliver_mail):
    """One appeal per account: a row per dataset from the engine's index, SLA clock, event, audit, email."""
    entries = footprint.for_owner(owner_a)
    assert entries, "the corpus account appears somewhere"
    appeal = file_for(owner_a)

    assert appeal.status == "filed"
    assert [d.dataset for d in appeal.datasets] == [e["dataset"] for e in entries]
    assert appeal.footprint_size == sum(e["authored_tweets"] + e["referring_rows"] for e in entries)
    assert appeal.due_at - appeal.created_at == timedelta(days=runtime.settings().sla_days)
    event = db.session.scalars(select(AppealEvent).where(AppealEvent.appeal_id == appeal.id)).one()
    assert (event.status_from, event.status_to, event.actor_kind, event.actor_id) == (None, "filed", "account", owner_a.id)
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "appeal.file")).one()
    assert audit.object_id == str(appeal.id) and audit.after["status"] == "filed"
    mail = db.session.scalars(select(OutboxMessage)).one()
    assert mail.to_addr == GOOD_APPEAL["contact_email"] and f"#{appeal.id}" in mail.subject
    assert mail.status == "pending"  # filing only writes the row; the worker delivers it
    deliver_mail()
    mail = db.session.scalars(select(OutboxMessage)).one()
    assert mail.status == "logged"  # no SMTP configured: the log and the outbox table hold it


def test_second_open_appeal_is_refused(owner_a):
    first = file_for(owner_a)
    with pytest.raises(Conflict) as err:
        file_for(owner_a, statement="again")
    assert err.value.code == "appeal_open" and f"#{first.id}" in err.value.message
    assert _count(Appeal) == 1


def test_account_in_no_dataset_cannot_file(outsider):
    assert footprint.for_owner(outsider) == []
    with pytest.raises(Conflict) as err:
        file_for(outsider)
    assert err.value.code == "not_in_any_dataset"
    assert _count(Appeal) == 0 and _count(OutboxMessage) == 0


def test_reappeal_within_cooldown_needs_new_information(owner_a, settings):
    """After a denial, a new appeal within the cool-down is refused unless it brings new information."""
    denied = file_for(owner_a)
    move(denied.id, "in_review", "denied", note="The account posted campaign material.")

    with pytest.raises(Conflict) as err:
        file_for(owner_a)
    assert err.value.code == "reappeal_too_soon" and "new_information" in err.value.fields
    assert _count(Appeal) == 1

    second = file_for(owner_a, new_information="I found the login alerts from the time it was taken over.")
    assert second.new_information.startswith("I found")


def test_reappeal_after_cooldown_needs_nothing_new(owner_a, settings):
    denied = file_for(owner_a)
    move(denied.id, "in_review", "denied")
    db.session.execute(
        AppealEvent.__table__.update().where(AppealEvent.status_to == "denied")
        .values(created_at=utcnow() - timedelta(days=settings.reappeal_cooldown_days, minutes=1))
    )
    db.session.commit()
    assert file_for(owner_a).status == "filed"


def test_cooldown_is_configurable(owner_a, settings):
    denied = file_for(owner_a)
    move(denied.id, "in_review", "denied")
    runtime.bootstrap(replace(settings, reappeal_cooldown_days=0))
    assert file_for(owner_a).status == "filed"


def test_withdrawn_appeal_does_not_start_a_cooldown(owner_a):
    first = file_for(owner_a)
    filing.withdraw(owner_a, owner_actor(owner_a), first.id)
    assert file_for(owner_a).status == "filed"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"reason": "bored"}, "reason"),
        ({"reason": None}, "reason"),
        ({"statement": ""}, "statement"),
        ({"statement": "   \n  "}, "statement"),
        ({"statement": "x" * 5001}, "statement"),
        ({"statement": 42}, "statement"),
        ({"statement": "nul\x00byte"}, "statement"),
        ({"contact_email": "not-an-email"}, "contact_email"),
        ({"contact_email": ""}, "contact_email"),
        ({"reason": "compromised"}, "compromised_from"),
        ({"reason": "compromised", "compromised_from": "2019-02-01"}, "compromised_until"),
        ({"reason": "compromised", "compromised_from": "31/01/2019", "compromised_until": "2019-02-01"}, "compromised_from"),
        ({"reason": "compromised", "compromised_from": "2019-03-01", "compromised_until": "2019-02-01"}, "compromised_until"),
        ({"reason": "compromised", "compromised_from": "2019-03-01", "compromised_until": "2999-01-01"}, "compromised_until"),
        ({"new_information": "y" * 5001}, "new_information"),
    ],
)
def test_invalid_fields_are_named_and_change_nothing(owner_a, overrides, field):
    with pytest.raises(Invalid) as err:
        file_for(owner_a, **overrides)
    assert field in err.value.fields and err.value.fields[field]
    assert _count(Appeal) == 0 and _count(AppealEvent) == 0 and _count(OutboxMessage) == 0


def test_statement_limits_count_characters_not_line_ends(owner_a):
    """5,000 characters exactly is fine, even written in another script with browser line ends."""
    statement = ("Это моя учётная запись.\r\n" * 500)[:5000]
    appeal = file_for(owner_a, statement=statement)
    assert "\r" not in appeal.statement and len(appeal.statement) <= 5000


def test_compromised_dates_are_stored(owner_a):
    appeal = file_for(owner_a, reason="compromised", compromised_from="2019-01-05", compromised_until="2019-02-10")
    as_dict = filing.appeal_to_owner_dict(appeal)
    assert (as_dict["compromised_from"], as_dict["compromised_until"]) == ("2019-01-05", "2019-02-10")


def test_dates_are_ignored_for_other_reasons(owner_a):
    """A real date is ignored with another reason; a date string that is no date is still refused (the
    API documents `format: date`; schemathesis found "2024-13-01" accepted). The page's hidden three-part
    fields are ignored whatever they hold: a person who typed a date and then chose another reason
    must not be stopped by a field they can no longer see."""
    with pytest.raises(Invalid) as err:
        file_for(owner_a, compromised_from="2019-01-05", compromised_until="junk")
    assert set(err.value.fields) == {"compromised_until"}
    appeal = file_for(owner_a, compromised_from="2019-01-05", compromised_until_day="x",
                      compromised_until_month="13", compromised_until_year="19")
    assert appeal.compromised_from is None and appeal.compromised_until is None


def test_reply_only_when_information_is_requested(owner_a):
    appeal = file_for(owner_a)
    with pytest.raises(Conflict) as err:
        filing.reply(owner_a, owner_actor(owner_a), appeal.id, "Here you are.")
    assert err.value.code == "not_awaiting_reply"

    move(appeal.id, "in_review", "info_requested")
    with pytest.raises(Invalid):
        filing.reply(owner_a, owner_actor(owner_a), appeal.id, "   ")
    stale = appeal.version - 1
    with pytest.raises(Conflict) as err:
        filing.reply(owner_a, owner_actor(owner_a), appeal.id, "Here you are.", expected_version=stale)
    assert err.value.code == "stale_version"

    replied = filing.reply(owner_a, owner_actor(owner_a), appeal.id, "The bakery on Main Street.", appeal.version)
    assert replied.status == "in_review" and replied.info_due_at is None
    bodies = db.session.scalars(select(Message.body).where(Message.author_kind == "account")).all()
    assert bodies == ["The bakery on Main Street."]
    timeline = filing.appeal_to_owner_dict(replied)["timeline"]
    assert [i["from"] for i in timeline if i["type"] == "message"] == ["staff", "you"]


def test_withdraw_releases_the_claim_and_is_final(owner_a, make_staff):
    reviewer = make_staff("rev@example.org")
    appeal = file_for(owner_a)
    move(appeal.id, "in_review")
    appeal.assigned_to_id, appeal.claimed_at, appeal.claim_touched_at = reviewer.id, utcnow(), utcnow()
    db.session.commit()

    withdrawn = filing.withdraw(owner_a, owner_actor(owner_a), appeal.id)
    assert withdrawn.status == "withdrawn" and withdrawn.assigned_to_id is None and withdrawn.claimed_at is None
    with pytest.raises(Conflict) as err:
        filing.withdraw(owner_a, owner_actor(owner_a), appeal.id)
    assert err.value.code == "cannot_withdraw"


def test_withdraw_refused_once_the_correction_is_under_way(owner_a):
    appeal = file_for(owner_a)
    move(appeal.id, "in_review", "approved", "correction_queued")
    with pytest.raises(Conflict) as err:
        filing.withdraw(owner_a, owner_actor(owner_a), appeal.id)
    assert "under way" in err.value.message
    assert db.session.get(Appeal, appeal.id).status == "correction_queued"


def test_owners_see_only_their_own_appeals(owner_a, owner_b, make_staff):
    mine = file_for(owner_a)
    theirs = file_for(owner_b, contact_email="b@example.org")
    assert [a.id for a in filing.list_own_appeals(owner_a)] == [mine.id]
    for call in (
        lambda: filing.get_own_appeal(owner_a, theirs.id),
        lambda: filing.reply(owner_a, owner_actor(owner_a), theirs.id, "hi"),
        lambda: filing.withdraw(owner_a, owner_actor(owner_a), theirs.id),
        lambda: filing.get_own_appeal(owner_a, 10**9),
    ):
        with pytest.raises(NotFound):
            call()
    assert db.session.get(Appeal, theirs.id).status == "filed"
    with pytest.raises(Unauthorized):
        filing.get_own_appeal(None, mine.id)
    with pytest.raises(Forbidden):
        filing.file_appeal(make_staff("s@example.org"), owner_actor(owner_a), GOOD_APPEAL)


def test_owner_view_shows_decision_and_releases_never_staff_ids(owner_a, make_staff):
    reviewer = make_staff("rev2@example.org")
    appeal = file_for(owner_a)
    move(appeal.id, "in_review", "approved")
    appeal.decision_remedy, appeal.approved_by_id, appeal.decision_statement = "remove", reviewer.id, "Clearly a bakery."
    db.session.commit()
    assert filing.appeal_to_owner_dict(appeal)["decision"] is None  # not final until a second reviewer confirms
    move(appeal.id, "correction_queued", "correcting")
    move(appeal.id, "corrected", data={"releases": {"ds_a": 2}, "batch_id": "internal-batch"})
    view = filing.appeal_to_owner_dict(appeal)
    assert view["decision"]["remedy"] == "remove" and view["releases"] == {"ds_a": 2}
    assert view["can_withdraw"] is False and view["due_at"] is None
    flat = repr(view)
    assert "internal-batch" not in flat and "approved_by" not in flat and "actor_id" not in flat
