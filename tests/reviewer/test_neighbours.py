"""The appeal page's j / k links point where the queue page's order says, read with two LIMIT 1 queries
instead of a 100-row queue page; the chart template is read and hashed once per process and locale."""

from __future__ import annotations

import random
import re
from datetime import timedelta

from sqlalchemy import event, update

from appeals import db
from appeals.db import utcnow
from appeals.models import APPEAL_STATUSES, Appeal
from appeals.services import appeal_neighbours, queue
from tests.reviewer.conftest import login, make_appeal


def queue_order(principal) -> list[int]:
    """The default queue's ids in the queue page's own order (every one fits on a page here)."""
    page = queue.list_queue(principal, queue.parse_filters({"per_page": "100"}))
    assert page.total <= 100
    return [a.id for a in page.items]


def seeded_appeals(new_account, seed: int, count: int = 36) -> list[int]:
    """Appeals in every status, with ties on created_at (the id decides between them)."""
    rng = random.Random(seed)
    owners = [new_account(str(2_000_000 + seed * 100 + i), f"owner_{seed}_{i}") for i in range(4)]
    ids = [make_appeal(rng.choice(owners), status=rng.choice(APPEAL_STATUSES), age_days=rng.choice([1, 2, 3, 5]),
                       commit=False) for _ in range(count)]
    db.session.commit()
    # make_appeal takes utcnow() per row; give tied ages one instant, so ties are real ties.
    base = utcnow()
    for appeal in ids:
        age = round((base - appeal.created_at).total_seconds() / 86400)
        db.session.execute(update(Appeal).where(Appeal.id == appeal.id).values(created_at=base - timedelta(days=age)))
    db.session.commit()
    return [a.id for a in ids]


def test_neighbours_follow_the_queue_order_for_every_appeal(new_account, reviewer, seeded):
    for seed in range(3):
        all_ids = seeded_appeals(new_account, seed)
        order = queue_order(reviewer)
        assert order, "some appeals wait for staff"
        for appeal_id in all_ids:
            got = appeal_neighbours.neighbours(reviewer, appeal_id)
            if appeal_id in order:
                at = order.index(appeal_id)
                want = (order[at - 1] if at else None, order[at + 1] if at + 1 < len(order) else None)
            else:  # not waiting for staff: the link leads into the queue, at its first appeal
                want = (None, order[0])
            assert got == want, (seed, appeal_id, order)


def test_an_empty_queue_has_no_neighbours(new_account, reviewer, seeded):
    owner = new_account("2999999", "lonely")
    appeal = make_appeal(owner, status="denied")
    assert appeal_neighbours.neighbours(reviewer, appeal.id) == (None, None)


def test_the_page_links_its_neighbours_with_two_small_queries(app, client, new_account, reviewer, seeded):
    seeded_appeals(new_account, 7, count=12)
    order = queue_order(reviewer)
    middle = order[len(order) // 2]
    login(client, reviewer)
    statements = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        values = parameters.values() if isinstance(parameters, dict) else (parameters or ())
        statements.append((statement, list(values)))

    engine = db.session.get_bind()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        html = client.get(f"/review/appeals/{middle}").get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    at = order.index(middle)
    assert re.search(rf'href="/review/appeals/{order[at - 1]}" rel="prev"', html)
    assert re.search(rf'href="/review/appeals/{order[at + 1]}" rel="next"', html)
    # No queue page is read any more (it asked for 100 rows); one statement per link.
    assert not [s for s, values in statements if "appeals" in s and 100 in values]
    assert len([s for s, _ in statements if "UNION ALL" in s]) == 2


def test_the_chart_template_is_read_once_per_locale(app, client, corpus, corpus_account, reviewer, seeded,
                                                   monkeypatch):
    from reviewer_ui import views

    appeal = make_appeal(corpus_account, datasets=[d.name for d in corpus])
    views._chart_versions.clear()
    loader = app.jinja_env.loader
    real = loader.get_source
    reads = []

    def counting(environment, template):
        if template == views.CHART_TEMPLATE:
            reads.append(template)
        return real(environment, template)

    monkeypatch.setattr(loader, "get_source", counting)
    login(client, reviewer)
    for _ in range(3):
        assert client.get(f"/review/appeals/{appeal.id}").status_code == 200
    # Jinja loads the template once to draw it; the version is hashed from one more read, once.
    assert len(reads) <= 2
    assert len(views._chart_versions) == 1
