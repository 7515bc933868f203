"""The queue's maintained counts (appeal_counts) always equal a fresh GROUP BY over the appeals, whatever
happens: filings, every allowed status move, rolled-back moves, deletions; and the queue's figures read
from them equal the figures counted from the appeals."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from appeals import db
from appeals import status as table
from appeals.db import utcnow
from appeals.models import Account, Appeal, AppealCount, AppealDataset, REASONS
from appeals.services import queue, queue_counts
from appeals.services.appeals import transition
from appeals.services.audit import Actor

SYSTEM = Actor.system("test")

operations = st.lists(st.one_of(
    st.tuples(st.just("file"), st.sampled_from(REASONS), st.integers(-30, 30), st.integers(-23, 23),
              st.integers(0, 6), st.integers(0, 23)),
    st.tuples(st.just("move"), st.integers(0, 10 ** 6), st.integers(0, 10 ** 6)),
    st.tuples(st.just("move_and_roll_back"), st.integers(0, 10 ** 6), st.integers(0, 10 ** 6)),
    st.tuples(st.just("delete"), st.integers(0, 10 ** 6)),
    st.tuples(st.just("claim"), st.integers(0, 10 ** 6), st.booleans()),
), min_size=1, max_size=30)


def fresh_counts() -> Counter:
    found = Counter()
    for status, reason, due_at, created_at in db.session.execute(
            select(Appeal.status, Appeal.reason, Appeal.due_at, Appeal.created_at)):
        found[(status, reason, due_at.date(), created_at.date())] += 1
    return found


def kept_counts() -> Counter:
    rows = db.session.execute(select(AppealCount.status, AppealCount.reason, AppealCount.due_day,
                                     AppealCount.created_day, AppealCount.appeals))
    return Counter({(s, r, d, c): n for s, r, d, c, n in rows if n})


def counted_page(staff, **params) -> queue.QueuePage:
    return queue.list_queue(staff, queue.parse_filters(MultiDict(params)))


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(ops=operations)
def test_kept_counts_equal_a_fresh_group_by(settings, reviewer, ops):
    db.session.execute(Appeal.__table__.delete())
    db.session.execute(AppealCount.__table__.delete())
    db.session.commit()
    account = db.session.scalar(select(Account).limit(1))
    if account is None:
        account = Account(user_id="7000001", screen_name="counted", screen_name_lower="counted", password_hash="!")
        db.session.add(account)
        db.session.commit()
    now = utcnow()
    for op in ops:
        ids = db.session.scalars(select(Appeal.id).order_by(Appeal.id)).all()
        if op[0] == "file":
            _, reason, days, hours, age_days, age_hours = op
            appeal = Appeal(account_id=account.id, reason=reason, statement="s", contact_email="a@example.org",
                            created_at=now - timedelta(days=age_days, hours=age_hours),
                            due_at=now + timedelta(days=days, hours=hours),
                            datasets=[AppealDataset(dataset="everywhere", version=1)])
            transition(appeal, "filed", SYSTEM, "appeal.filed")
            db.session.commit()
        elif op[0] in ("move", "move_and_roll_back") and ids:
            appeal = db.session.get(Appeal, ids[op[1] % len(ids)])
            targets = sorted(table.TRANSITIONS[appeal.status])
            if not targets:
                continue
            transition(appeal, targets[op[2] % len(targets)], SYSTEM, "appeal.moved")
            db.session.flush()
            if op[0] == "move":
                db.session.commit()
            else:
                db.session.rollback()
        elif op[0] == "claim" and ids:
            # A live claim (touched now) or an idle one (touched before the idle cutoff).
            appeal = db.session.get(Appeal, ids[op[1] % len(ids)])
            appeal.assigned_to_id = reviewer.id
            appeal.claimed_at = appeal.claim_touched_at = now if op[2] else now - timedelta(hours=3)
            db.session.commit()
        elif op[0] == "delete" and ids:
            db.session.delete(db.session.get(Appeal, ids[op[1] % len(ids)]))
            db.session.commit()
        assert kept_counts() == fresh_counts()

    # The queue's figures from the counts equal those counted from the appeals themselves.
    for params in ({}, {"status": "all"}, {"status": "open", "overdue": "1"}, {"reason": "compromised"},
                   {"status": "all", "reason": "other", "overdue": "1"}, {"assigned": "unassigned"},
                   {"status": "all", "assigned": "unassigned", "overdue": "1", "reason": "included_in_error"},
                   {"min_age_days": "0"}, {"status": "all", "min_age_days": "2"},
                   {"status": "all", "min_age_days": "1", "overdue": "1", "assigned": "unassigned"},
                   {"status": "open", "min_age_days": "3", "reason": "other", "overdue": "1"}):
        kept = counted_page(reviewer, **params)
        # Every appeal is in the dataset "everywhere": filtering by it counts with a GROUP BY over the appeals.
        counted = counted_page(reviewer, dataset="everywhere", **params)
        assert (kept.counts, kept.total, kept.overdue) == (counted.counts, counted.total, counted.overdue), params
        assert [a.id for a in kept.items] == [a.id for a in counted.items]


def test_recount_rebuilds_the_counts(settings, make_account):
    account = make_account("7000002", "recounted")
    now = utcnow()
    for k, status in enumerate(("filed", "denied", "denied", "in_review")):
        db.session.add(Appeal(account_id=account.id, status=status, reason=REASONS[k % 3], statement="s",
                              contact_email="a@example.org", created_at=now, due_at=now + timedelta(days=k)))
    # No filing time given: the column's default, and the count's filing day, are now.
    db.session.add(Appeal(account_id=account.id, status="filed", reason="other", statement="s",
                          contact_email="a@example.org", due_at=now))
    db.session.commit()
    expected = kept_counts()
    assert expected == fresh_counts() and sum(expected.values()) == 5
    db.session.execute(AppealCount.__table__.delete())
    db.session.commit()
    assert not kept_counts()
    queue_counts.recount()
    db.session.commit()
    assert kept_counts() == expected
    assert db.session.scalar(select(func.count()).select_from(AppealCount)) == len(expected)
