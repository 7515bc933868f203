"""Fixtures for the public pages: researchers, logged-in clients, form tokens, a published correction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask_login.utils import _create_identifier

from appeals import db, runtime
from appeals.db import utcnow
from appeals.models import Researcher
from appeals.services.auth import session_stamp
from appeals.services.passwords import hash_password
from tests.conftest import PASSWORD, users_of
from tests.conftest import csrf_from as csrf_token

def post_form(client, url: str, data: dict, form_url: str | None = None, **kwargs):
    """POST `data` to `url` with the CSRF token of the form page (default: the same URL)."""
    return client.post(url, data={**data, "csrf_token": csrf_token(client, form_url or url)}, **kwargs)


@pytest.fixture
def make_researcher(settings):
    """Create a researcher directly; status approved|pending|rejected|revoked, optional expiry."""

    def make(email: str = "ada@uni.example", status: str = "approved", expires_in: timedelta | None = None,
             name: str = "Ada Researcher") -> Researcher:
        researcher = Researcher(
            name=name, institution="University of Examples", email=email, purpose="Studying campaigns.",
            password_hash=hash_password(PASSWORD), status=status,
            expires_at=utcnow() + expires_in if expires_in is not None else None,
        )
        db.session.add(researcher)
        db.session.commit()
        return researcher

    return make


def login_researcher(client, email: str, password: str = PASSWORD):
    """Log a researcher in through the real login form."""
    return post_form(client, "/researchers/login", {"email": email, "password": password})


def login_as(client, principal) -> None:
    """Put a principal's login in the test client's session (staff and owner login pages are other areas')."""
    # Flask-Login's "strong" session protection binds the session to the client's address and agent.
    client.environ_base["HTTP_USER_AGENT"] = "appeals-tests"
    with client.application.test_request_context(environ_base={"REMOTE_ADDR": "127.0.0.1"},
                                                 headers={"User-Agent": "appeals-tests"}):
        identifier = _create_identifier()
    with client.session_transaction() as session:
        session["_user_id"] = principal.get_id()
        session["_fresh"] = True
        session["_id"] = identifier
        session["_stamp"] = session_stamp(principal)  # sessions are checked on the server (issue 13)


@pytest.fixture
def corrected(corpus, corpus_account):
    """Publish a correction (re-hash) of the corpus account; returns (account, result, identifying strings)."""
    from workers.engine.hashing import pseudonym

    engine = runtime.engine()
    result = engine.apply("batch-public-test", [(corpus_account.user_id, "rehash")])
    assert result.releases, "the correction published nothing"
    key = runtime.settings().hash_key
    row = next(r for r in users_of(corpus[0]) if r["userid"] == corpus_account.user_id)
    identifying = {
        corpus_account.user_id, corpus_account.screen_name, row["user_display_name"],
        pseudonym(key, corpus_account.user_id, 0), pseudonym(key, corpus_account.user_id, 1),
    }
    return corpus_account, result, {s for s in identifying if s}


def first_dataset(corpus) -> str:
    """The name of the first synthetic dataset."""
    return corpus[0].name
