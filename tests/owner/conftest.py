"""Helpers for the owner-side tests: accounts in and out of the corpus, logins, appeals moved by the state machine."""

from __future__ import annotations


import pytest

from appeals import db, runtime
from appeals.models import Appeal, Message
from appeals.services import appeals, filing
from appeals.services.audit import Actor
from appeals.services.auth import session_stamp
from tests.conftest import PASSWORD, csrf_from, users_of

GOOD_APPEAL = {
    "reason": "included_in_error",
    "statement": "I run a bakery account; I never took part in any campaign.",
    "contact_email": "owner@example.org",
}


def web_login(client, username: str, password: str = PASSWORD):
    """Log in through the login form; returns the response."""
    token = csrf_from(client, "/login")
    return client.post("/login", data={"csrf_token": token, "username": username, "password": password})


def staff_session(app, client, staff) -> None:
    """Put a staff member's Flask-Login session on `client` (staff log in on the reviewer side)."""
    with app.test_request_context(environ_base=client.environ_base):
        ident = app.login_manager._session_identifier_generator()
    with client.session_transaction() as sess:
        sess["_user_id"] = staff.get_id()
        sess["_fresh"] = True
        sess["_id"] = ident
        sess["_stamp"] = session_stamp(staff)  # sessions are checked on the server (issue 13)


def owner_actor(account) -> Actor:
    return Actor("account", account.id, account.screen_name)


def file_for(account, **overrides) -> Appeal:
    """File an appeal for `account` through the filing service."""
    return filing.file_appeal(account, owner_actor(account), {**GOOD_APPEAL, **overrides})


def move(appeal_id: int, *statuses: str, note: str | None = None, data: dict | None = None) -> Appeal:
    """Move an appeal through `statuses` with the state machine, as the review side would; commits."""
    appeal = db.session.get(Appeal, appeal_id)
    staff = Actor("staff", None, "test reviewer")
    for i, status in enumerate(statuses):
        if status == "info_requested":
            db.session.add(Message(appeal_id=appeal.id, author_kind="staff", body="Which shop do you run?"))
        last = i == len(statuses) - 1
        appeals.transition(appeal, status, staff, f"test.{status}",
                           public_note=note if last else None, data=data if last else None)
    db.session.commit()
    return appeal


@pytest.fixture(autouse=True)
def _end_session():
    """Tests that call services directly end their transaction, so the next test's cleanup never waits on it."""
    yield
    db.session.remove()


@pytest.fixture
def owner_a(corpus_account):
    """The most prolific author of the first synthetic dataset, as a platform account."""
    return corpus_account


@pytest.fixture
def owner_b(corpus, make_account, owner_a):
    """Another account of the corpus, also present in a published dataset."""
    engine = runtime.engine()
    for dataset in reversed(corpus):
        for row in users_of(dataset):
            if row["userid"] != owner_a.user_id and engine.footprint(row["userid"]):
                return make_account(row["userid"], row["user_screen_name"],
                                    email=f"b-{row['user_screen_name']}@example.org")
    raise AssertionError("the corpus has a single account")


@pytest.fixture
def outsider(corpus, make_account):
    """An account that appears in no dataset."""
    return make_account("990000000000000001", "not_in_data", email="outsider@example.org")
