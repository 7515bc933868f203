"""The queue: filters, sorting, counts, pagination, overdue, and a constant number of queries per page."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event
from werkzeug.datastructures import MultiDict

from appeals import db
from appeals.models import Account
from appeals.services import queue, review
from appeals.services.errors import Invalid
from tests.reviewer.conftest import actor, login, make_appeal


def accounts(n: int, start: int = 0) -> list[Account]:
    """Platform accounts in bulk (no password needed: they never log in here)."""
    rows = [Account(user_id=str(5000000 + i), screen_name=f"acct{i}", screen_name_lower=f"acct{i}",
                    password_hash="!", email=None) for i in range(start, start + n)]
    db.session.add_all(rows)
    db.session.commit()
    return rows


def page_for(staff, **params) -> queue.QueuePage:
    return queue.list_queue(staff, queue.parse_filters(MultiDict(params)))


@contextmanager
def counting_queries():
    """Count every SQL statement sent to the database inside the block."""
    engine = db.session.get_bind()
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_filters_sorting_and_counts(reviewer, reviewer2):
    """Each filter narrows the list; counts per status ignore only the status filter."""
    a, b, c, d = accounts(4)
    old = make_appeal(a, age_days=20, reason="compromised", datasets=("alpha_2020", "beta_2021"), footprint_size=5)
    mid = make_appeal(b, age_days=10, datasets=("beta_2021",), footprint_size=50)
    new = make_appeal(c, age_days=1, footprint_size=1)
    done = make_appeal(d, age_days=30, status="denied")
    review.claim(reviewer, mid.id, actor(reviewer))
    review.claim(reviewer2, new.id, actor(reviewer2))

    page = page_for(reviewer)
    assert [x.id for x in page.items] == [old.id, mid.id, new.id]  # oldest first, denied not waiting
    assert page.counts["filed"] == 1 and page.counts["in_review"] == 2 and page.counts["denied"] == 1
    assert page.total == 3 and page.overdue == 1  # the 20-day-old one is past its 14-day SLA

    assert [x.id for x in page_for(reviewer, sort="footprint").items] == [mid.id, old.id, new.id]
    assert [x.id for x in page_for(reviewer, sort="due").items] == [old.id, mid.id, new.id]
    assert [x.id for x in page_for(reviewer, sort="newest").items] == [new.id, mid.id, old.id]
    assert [x.id for x in page_for(reviewer, status="all").items] == [done.id, old.id, mid.id, new.id]
    assert [x.id for x in page_for(reviewer, status="in_review").items] == [mid.id, new.id]
    assert [x.id for x in page_for(reviewer, reason="compromised").items] == [old.id]
    assert [x.id for x in page_for(reviewer, dataset="beta_2021").items] == [old.id, mid.id]
    assert [x.id for x in page_for(reviewer, assigned="me").items] == [mid.id]
    assert [x.id for x in page_for(reviewer, assigned="unassigned").items] == [old.id]
    assert [x.id for x in page_for(reviewer, min_age_days="5").items] == [old.id, mid.id]
    overdue = page_for(reviewer, overdue="1")
    assert [x.id for x in overdue.items] == [old.id] and overdue.counts["denied"] == 0
    assert page_for(reviewer, dataset="beta_2021").counts == {**{s: 0 for s in page.counts}, "filed": 1,
                                                                 "in_review": 1}


def test_pagination(reviewer):
    rows = accounts(7)
    made = [make_appeal(acct, age_days=10 - i) for i, acct in enumerate(rows)]
    first, last = page_for(reviewer, per_page="3"), page_for(reviewer, per_page="3", page="3")
    assert first.pages == 3 and [x.id for x in first.items] == [m.id for m in made[:3]]
    assert [x.id for x in last.items] == [made[6].id]


@pytest.mark.parametrize("params", [
    {"status": "bogus"}, {"sort": "random"}, {"page": "0"}, {"per_page": "1000"}, {"assigned": "them"},
    {"min_age_days": "-1"}, {"reason": "spite"}, {"overdue": "maybe"},
    # Found by schemathesis: a control character is not a blank value.
    {"overdue": "\r"}, {"status": " waiting"}, {"reason": "\r"},
])
def test_bad_filters_are_named(reviewer, params):
    with pytest.raises(Invalid) as error:
        queue.parse_filters(MultiDict(params))
    assert set(error.value.fields) == set(params)


def test_queue_page_makes_a_constant_number_of_queries(client, reviewer, reviewer2, senior):
    """The page costs the same number of queries with 3 appeals or 60 (no N+1), claims and datasets shown."""
    login(client, reviewer)

    def fill(start: int, n: int) -> None:
        for i, acct in enumerate(accounts(n, start)):
            appeal = make_appeal(acct, age_days=1 + i % 20, datasets=("alpha_2020", "beta_2021")[: 1 + i % 2])
            if i % 3 == 0:
                review.claim([reviewer2, senior][i % 2], appeal.id, actor(reviewer2))

    fill(0, 3)
    assert client.get("/review/?per_page=100").status_code == 200
    with counting_queries() as small:
        body = client.get("/review/?per_page=100").get_data(as_text=True)
    assert "@acct2" in body
    fill(3, 60)
    with counting_queries() as large:
        body = client.get("/review/?per_page=100").get_data(as_text=True)
    assert "@acct62" in body and "ravi@review.example" in body
    assert len(large) == len(small), "\n".join(large)
    assert len(small) <= 8, "\n".join(small)


def test_overdue_appeals_stand_out_on_the_page(client, reviewer):
    late, = accounts(1)
    make_appeal(late, age_days=20)
    login(client, reviewer)
    body = client.get("/review/").get_data(as_text=True)
    assert 'class="overdue"' in body and "1 overdue" in body


def test_bad_filter_on_the_page_is_a_clear_422(client, reviewer):
    login(client, reviewer)
    response = client.get("/review/?sort=random")
    assert response.status_code == 422 and "not valid" in response.get_data(as_text=True)


def test_dashboard_figures(client, reviewer, reviewer2, seeded):
    """Depth, decisions, approval rate and overdue come from the appeals themselves."""
    a, b, c = accounts(3)
    approved, denied = make_appeal(a, age_days=3), make_appeal(b, age_days=2)
    make_appeal(c, age_days=30)  # waiting past its due date: the overdue figure
    for appeal, action, extra in ((approved, "approve", {"remedy": "remove"}),
                                  (denied, "deny", {"reason_code": "correctly_included"})):
        review.claim(reviewer, appeal.id, actor(reviewer))
        review.decide(reviewer, appeal.id, actor(reviewer), action, statement="Because.", **extra)
    data = queue.dashboard(reviewer)
    assert data["depth"]["approved"] == 1 and data["depth"]["denied"] == 1 and data["depth"]["filed"] == 1
    assert data["decisions"] == 2 and data["approval_rate"] == 0.5 and data["overdue"] == 1
    assert 40 < data["median_hours_to_decision"] < 80
    login(client, reviewer2)
    body = client.get("/review/dashboard").get_data(as_text=True)
    assert "50%" in body and "Median time to decision" in body
