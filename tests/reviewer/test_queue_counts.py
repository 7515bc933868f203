"""The queue's maintained counts (appeal_counts, appeal_dataset_counts, appeal_totals) always equal a fresh GROUP BY over the
appeals and their datasets, and each dataset row's copies of its appeal's status and sort keys equal the appeal's,
whatever happens: filings, every allowed status move, rolled-back moves, deletions,
datasets added or dropped (alone or with a move); and the queue's figures and pages read from them equal
those worked out from the appeals one by one."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, example, given, settings as hsettings, strategies as st
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from appeals import db
from appeals import status as table
from appeals.db import utcnow
from appeals.models import Account, Appeal, AppealCount, AppealDataset, AppealDatasetCount, AppealTotal, REASONS
from appeals.services import queue, queue_counts
from appeals.services.appeals import transition
from appeals.services.audit import Actor

SYSTEM = Actor.system("test")
DATASETS = ("alpha", "beta", "gamma")

operations = st.lists(st.one_of(
    st.tuples(st.just("file"), st.sampled_from(REASONS), st.integers(-30, 30), st.integers(-23, 23),
              st.integers(0, 6), st.integers(0, 23), st.sets(st.sampled_from(DATASETS))),
    st.tuples(st.just("move"), st.integers(0, 10 ** 6), st.integers(0, 10 ** 6)),
    st.tuples(st.just("move_and_roll_back"), st.integers(0, 10 ** 6), st.integers(0, 10 ** 6)),
    st.tuples(st.just("delete"), st.integers(0, 10 ** 6)),
    st.tuples(st.just("claim"), st.integers(0, 10 ** 6), st.booleans()),
    # A dataset row added to or dropped from a stored appeal, alone or in the same flush as a status move.
    st.tuples(st.just("add_dataset"), st.integers(0, 10 ** 6), st.sampled_from(DATASETS), st.booleans()),
    st.tuples(st.just("drop_dataset"), st.integers(0, 10 ** 6), st.integers(0, 10 ** 6), st.booleans()),
), min_size=1, max_size=30)

# Every filter shape the counts serve, each over no dataset and two datasets (sorts and pages: the merge).
QUERIES = ({}, {"status": "all"}, {"status": "open", "overdue": "1"}, {"reason": "compromised"},
           {"status": "all", "reason": "other", "overdue": "1"}, {"assigned": "unassigned"}, {"assigned": "me"},
           {"status": "all", "assigned": "unassigned", "overdue": "1", "reason": "included_in_error"},
           {"min_age_days": "0"}, {"status": "all", "min_age_days": "2"},
           {"status": "all", "min_age_days": "1", "overdue": "1", "assigned": "unassigned"},
           {"status": "open", "min_age_days": "3", "reason": "other", "overdue": "1"},
           {"status": "all", "sort": "newest", "per_page": "3", "page": "2"},
           {"sort": "footprint", "per_page": "2", "page": "2"}, {"status": "open", "sort": "due", "per_page": "4"},
           {"status": "in_review", "assigned": "me", "sort": "newest"})


def fresh_counts() -> Counter:
    found = Counter()
    for status, reason, due_at, created_at in db.session.execute(
            select(Appeal.status, Appeal.reason, Appeal.due_at, Appeal.created_at)):
        found[(status, reason, due_at.date(), created_at.date())] += 1
    return found


def fresh_dataset_counts() -> Counter:
    found = Counter()
    for name, status, reason, due_at, created_at in db.session.execute(
            select(AppealDataset.dataset, Appeal.status, Appeal.reason, Appeal.due_at, Appeal.created_at)
            .join(Appeal, Appeal.id == AppealDataset.appeal_id)):
        found[(name, status, reason, due_at.date(), created_at.date())] += 1
    return found


def kept_counts() -> Counter:
    rows = db.session.execute(select(AppealCount.status, AppealCount.reason, AppealCount.due_day,
                                     AppealCount.created_day, AppealCount.appeals))
    return Counter({(s, r, d, c): n for s, r, d, c, n in rows if n})


def kept_dataset_counts() -> Counter:
    rows = db.session.execute(select(AppealDatasetCount.dataset, AppealDatasetCount.status, AppealDatasetCount.reason,
                                     AppealDatasetCount.due_day, AppealDatasetCount.created_day,
                                     AppealDatasetCount.appeals))
    return Counter({(ds, s, r, d, c): n for ds, s, r, d, c, n in rows if n})


def kept_totals() -> Counter:
    rows = db.session.execute(select(AppealTotal.dataset, AppealTotal.status, AppealTotal.reason, AppealTotal.appeals))
    return Counter({(ds, s, r): n for ds, s, r, n in rows if n})


def fresh_totals() -> Counter:
    """Appeals per ("", status, reason) and per (dataset, status, reason), counted afresh."""
    found = Counter()
    for status, reason in db.session.execute(select(Appeal.status, Appeal.reason)):
        found[("", status, reason)] += 1
    for name, status, reason in db.session.execute(select(AppealDataset.dataset, Appeal.status, Appeal.reason)
                                                   .join(Appeal, Appeal.id == AppealDataset.appeal_id)):
        found[(name, status, reason)] += 1
    return found


def link_copies() -> set:
    """(appeal, dataset, status, filed, due, footprint) as the dataset rows hold them."""
    return set(db.session.execute(select(AppealDataset.appeal_id, AppealDataset.dataset, AppealDataset.appeal_status,
                                         AppealDataset.appeal_created_at, AppealDataset.appeal_due_at,
                                         AppealDataset.appeal_footprint)))


def fresh_link_copies() -> set:
    """The same, read from the appeals."""
    return set(db.session.execute(select(AppealDataset.appeal_id, AppealDataset.dataset, Appeal.status,
                                         Appeal.created_at, Appeal.due_at, Appeal.footprint_size)
                                  .join(Appeal, Appeal.id == AppealDataset.appeal_id)))


def queue_page(staff, **params) -> queue.QueuePage:
    return queue.list_queue(staff, queue.parse_filters(MultiDict(params)))


def expected(staff, page: queue.QueuePage, appeals: list[Appeal]) -> tuple:
    """(counts, total, overdue, ids on the page) worked out in Python from every appeal, at the page's time."""
    f, now, cutoff = page.filters, page.now, page.claim_cutoff
    statuses = queue.STATUS_GROUPS.get(f.status, (f.status,))
    late = {a.id for a in appeals if a.status in table.UNDECIDED and a.due_at < now}

    def matches(a: Appeal) -> bool:
        live = a.assigned_to_id is not None and a.claim_touched_at is not None and a.claim_touched_at >= cutoff
        return ((not f.reason or a.reason == f.reason)
                and (not f.dataset or f.dataset in {d.dataset for d in a.datasets})
                and (f.assigned != "me" or (live and a.assigned_to_id == staff.id))
                and (f.assigned != "unassigned" or a.assigned_to_id is None
                     or (a.claim_touched_at is not None and a.claim_touched_at < cutoff))
                and (f.min_age_days is None or a.created_at <= now - timedelta(days=f.min_age_days))
                and (not f.overdue or a.id in late))

    found = [a for a in appeals if matches(a)]
    counts = {s: sum(1 for a in found if a.status == s) for s in table.STATUSES}
    listed = [a for a in found if a.status in statuses]
    order = {"oldest": lambda a: (a.created_at, a.id), "due": lambda a: (a.due_at, a.id),
             "newest": lambda a: (-a.created_at.timestamp(), -a.id),
             "footprint": lambda a: (-a.footprint_size, a.created_at, a.id)}[f.sort]
    listed.sort(key=order)
    start = (f.page - 1) * f.per_page
    return (counts, len(listed), sum(1 for a in listed if a.id in late),
            [a.id for a in listed[start:start + f.per_page]])


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(ops=operations)
# Cases random lists rarely reach (hypothesis favours zero offsets: appeals due now, so overdue): a live
# claim on an appeal not yet due; datasets dropped (delete-orphan) or added, alone or with a status move.
@example(ops=[("file", "other", 5, 0, 0, 0, {"alpha"}), ("file", "other", -5, 0, 3, 0, {"alpha", "beta"}),
              ("claim", 0, True), ("claim", 1, True)])
@example(ops=[("file", "compromised", 3, 2, 1, 0, {"alpha", "beta"}), ("drop_dataset", 0, 0, False),
              ("file", "other", 3, 0, 2, 0, {"alpha", "beta"}), ("drop_dataset", 1, 1, True),
              ("add_dataset", 0, "gamma", True), ("add_dataset", 1, "alpha", False), ("delete", 0)])
def test_kept_counts_equal_a_fresh_group_by(settings, reviewer, ops):
    db.session.execute(Appeal.__table__.delete())
    db.session.execute(AppealCount.__table__.delete())
    db.session.execute(AppealDatasetCount.__table__.delete())
    db.session.execute(AppealTotal.__table__.delete())
    db.session.commit()
    db.session.expunge_all()  # the deleted appeals' objects go too (SQLite reuses their ids)
    account = db.session.scalar(select(Account).limit(1))
    if account is None:
        account = Account(user_id="7000001", screen_name="counted", screen_name_lower="counted", password_hash="!")
        db.session.add(account)
        db.session.commit()
    now = utcnow()
    for op in ops:
        ids = db.session.scalars(select(Appeal.id).order_by(Appeal.id)).all()
        if op[0] == "file":
            _, reason, days, hours, age_days, age_hours, names = op
            appeal = Appeal(account_id=account.id, reason=reason, statement="s", contact_email="a@example.org",
                            created_at=now - timedelta(days=age_days, hours=age_hours),
                            due_at=now + timedelta(days=days, hours=hours), footprint_size=(days * 7) % 5,
                            datasets=[AppealDataset(dataset=name, version=1) for name in sorted(names)])
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
        elif op[0] in ("add_dataset", "drop_dataset") and ids:
            appeal = db.session.get(Appeal, ids[op[1] % len(ids)])
            if op[0] == "add_dataset" and op[2] not in {d.dataset for d in appeal.datasets}:
                appeal.datasets.append(AppealDataset(dataset=op[2], version=1))
            elif op[0] == "drop_dataset" and appeal.datasets:
                appeal.datasets.remove(appeal.datasets[op[2] % len(appeal.datasets)])
            targets = sorted(table.TRANSITIONS[appeal.status])
            if op[3] and targets:  # the status moves in the same flush
                transition(appeal, targets[0], SYSTEM, "appeal.moved")
            db.session.commit()
        assert kept_counts() == fresh_counts()
        assert kept_dataset_counts() == fresh_dataset_counts()
        assert kept_totals() == fresh_totals()
        assert link_copies() == fresh_link_copies()

    # The queue's figures and page, read from the counts, equal those worked out from the appeals themselves.
    appeals = db.session.scalars(select(Appeal)).all()
    for params in QUERIES:
        for dataset in ("", "alpha", "beta"):
            page = queue_page(reviewer, **params, **({"dataset": dataset} if dataset else {}))
            assert (page.counts, page.total, page.overdue, [a.id for a in page.items]) == \
                expected(reviewer, page, appeals), (params, dataset)


def test_recount_rebuilds_the_counts(settings, make_account):
    account = make_account("7000002", "recounted")
    now = utcnow()
    for k, status in enumerate(("filed", "denied", "denied", "in_review")):
        db.session.add(Appeal(account_id=account.id, status=status, reason=REASONS[k % 3], statement="s",
                              contact_email="a@example.org", created_at=now, due_at=now + timedelta(days=k),
                              datasets=[AppealDataset(dataset=name, version=1) for name in DATASETS[:k]]))
    # No filing time given: the column's default, and the count's filing day, are now.
    db.session.add(Appeal(account_id=account.id, status="filed", reason="other", statement="s",
                          contact_email="a@example.org", due_at=now))
    db.session.commit()
    before, before_datasets = kept_counts(), kept_dataset_counts()
    assert before == fresh_counts() and sum(before.values()) == 5
    assert before_datasets == fresh_dataset_counts() and sum(before_datasets.values()) == 6
    copies = link_copies()
    assert copies == fresh_link_copies() and len(copies) == 6
    db.session.execute(AppealCount.__table__.delete())
    db.session.execute(AppealDatasetCount.__table__.delete())
    db.session.execute(AppealTotal.__table__.delete())
    db.session.execute(AppealDataset.__table__.update().values(appeal_status="withdrawn", appeal_footprint=-1))
    db.session.commit()
    assert not kept_counts() and not kept_dataset_counts() and not kept_totals() and link_copies() != copies
    queue_counts.recount()
    db.session.commit()
    assert kept_counts() == before and kept_dataset_counts() == before_datasets
    assert kept_totals() == fresh_totals() and sum(kept_totals().values()) == 11
    assert link_copies() == copies
    assert db.session.scalar(select(func.count()).select_from(AppealCount)) == len(before)
    assert db.session.scalar(select(func.count()).select_from(AppealDatasetCount)) == len(before_datasets)
