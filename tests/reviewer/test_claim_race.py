"""Claim next under a race: 20 reviewers, 200 claimable appeals, every call gets one until none is left."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from appeals import db
from appeals.models import Appeal, Staff
from appeals.services import review
from tests.reviewer.conftest import actor, make_appeal

REVIEWERS = 20
APPEALS = 200


def _claimable_left() -> int:
    return db.session.scalar(select(func.count()).select_from(Appeal)
                             .where(Appeal.status.in_(["filed", "in_review"]),
                                    Appeal.assigned_to_id.is_(None)))


@pytest.mark.slow
def test_twenty_reviewers_racing_claim_next_get_every_appeal_once(new_account, new_staff, settings):
    """Every call returns an appeal while one is claimable (None only once none is left); no appeal twice."""
    accounts = [new_account(str(2_000_000 + i), f"racer_{i}") for i in range(APPEALS // 10)]
    for i in range(APPEALS):
        make_appeal(accounts[i % len(accounts)], age_days=1 + i / 1000, commit=False)
    db.session.commit()
    staff_ids = [new_staff(f"r{i}@review.example", "reviewer").id for i in range(REVIEWERS)]
    db.session.remove()

    barrier = threading.Barrier(REVIEWERS, timeout=60)
    claimed: dict[int, list[int]] = {}
    premature: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def reviewer_loop(staff_id: int) -> None:
        try:
            me = db.session.get(Staff, staff_id)
            mine = claimed.setdefault(staff_id, [])
            db.session.commit()  # give the connection back while waiting: 20 threads, a pool of 15
            barrier.wait()
            while True:
                appeal = review.claim_next(me, actor(me))
                if appeal is None:
                    db.session.remove()
                    left = _claimable_left()
                    if left:
                        premature.append((staff_id, left))
                    return
                mine.append(appeal.id)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            db.session.remove()

    threads = [threading.Thread(target=reviewer_loop, args=(sid,)) for sid in staff_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[0]
    assert not premature, f"claim next said empty while appeals were claimable: {premature}"
    taken = [appeal_id for ids in claimed.values() for appeal_id in ids]
    assert len(taken) == APPEALS and len(set(taken)) == APPEALS
    holders = dict(db.session.execute(select(Appeal.id, Appeal.assigned_to_id)).all())
    for staff_id, ids in claimed.items():
        assert all(holders[i] == staff_id for i in ids)
    assert sum(1 for ids in claimed.values() if ids) > 1  # the race really was a race
