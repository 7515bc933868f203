"""The bearer-token check (`auth.resolve_token`): the right principal of the right kind, every rule that
ends a token (revocation, expiry, a disabled or missing principal), in one read-only statement."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, update

from appeals import db
from appeals.db import utcnow
from appeals.models import Account, ApiToken, Researcher, Staff
from appeals.services import auth
from tests.conftest import light_hash

SHARED_ID = 900_001  # the same id in all three principal tables: the token's kind must pick the row


@pytest.fixture
def principals(settings):
    """An account, a staff member and a researcher that share one id, each with a live token."""
    account = Account(id=SHARED_ID, user_id="900001", screen_name="Shared", screen_name_lower="shared",
                      password_hash=light_hash("x" * 12))
    staff = Staff(id=SHARED_ID, email="shared@review.example", role="reviewer", password_hash=light_hash("x" * 12),
                  totp_secret="JBSWY3DPEHPK3PXP")
    researcher = Researcher(id=SHARED_ID, name="R", institution="I", email="r@uni.example", purpose="p",
                            password_hash=light_hash("x" * 12))
    db.session.add_all([account, staff, researcher])
    db.session.commit()
    return {kind: (principal, auth.issue_token(principal))
            for kind, principal in (("account", account), ("staff", staff), ("researcher", researcher))}


def _statements(fn):
    """(fn's result, the SQL statements it sent)."""
    sent = []

    def note(_conn, _cursor, statement, *_args):
        sent.append(statement)

    engine = db.session.get_bind()
    event.listen(engine, "before_cursor_execute", note)
    try:
        return fn(), sent
    finally:
        event.remove(engine, "before_cursor_execute", note)


@pytest.mark.parametrize("kind", ["account", "staff", "researcher"])
def test_a_token_names_its_own_principal_in_one_select(principals, kind):
    db.session.remove()  # nothing in the identity map: the check must read the principal itself
    _principal, token = principals[kind]
    found, sent = _statements(lambda: auth.resolve_token(token))
    assert (type(found).kind, found.id) == (kind, SHARED_ID)
    assert isinstance(found, auth.PRINCIPAL_MODELS[kind])
    assert len(sent) == 1 and sent[0].lstrip().upper().startswith("SELECT")  # one statement, and no write


def _set(token: str, **values) -> None:
    db.session.execute(update(ApiToken).where(ApiToken.token_hash == auth._digest(token)).values(**values))
    db.session.commit()


@pytest.mark.parametrize("kind", ["account", "staff", "researcher"])
def test_revoked_and_expired_tokens_name_nobody(principals, kind):
    _principal, token = principals[kind]
    _set(token, expires_at=utcnow() - timedelta(seconds=1))
    assert auth.resolve_token(token) is None
    _set(token, expires_at=utcnow() + timedelta(hours=1))
    assert auth.resolve_token(token) is not None
    _set(token, revoked=True)
    assert auth.resolve_token(token) is None


def test_a_disabled_staff_members_token_names_nobody(principals):
    staff, token = principals["staff"]
    db.session.execute(update(Staff).where(Staff.id == staff.id).values(active=False))
    db.session.commit()
    db.session.remove()
    assert auth.resolve_token(token) is None
    # The other kinds sharing the id are unaffected.
    assert auth.resolve_token(principals["account"][1]).kind == "account"


def test_a_token_of_a_missing_principal_or_unknown_kind_names_nobody(principals):
    _staff, token = principals["staff"]
    _set(token, principal_id=SHARED_ID + 1)
    assert auth.resolve_token(token) is None
    _set(token, principal_id=SHARED_ID, principal_kind="operator")
    assert auth.resolve_token(token) is None


@pytest.mark.parametrize("token", ["", "x" * 201, "not-a-token"])
def test_malformed_or_unknown_tokens_name_nobody(principals, token):
    assert auth.resolve_token(token) is None
