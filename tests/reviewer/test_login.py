"""Staff login: password then TOTP, enrolment with a QR code, replay refused, session renewed, rate-limited."""

from __future__ import annotations

from sqlalchemy import select

from appeals import db
from appeals.models import AuditEntry, Staff
from tests.conftest import PASSWORD
from tests.reviewer.conftest import csrf_from, login, otp_for


def _password_step(client, email: str, password: str = PASSWORD):
    return client.post("/review/login", data={"csrf_token": csrf_from(client, "/review/login"),
                                              "email": email, "password": password})


def test_first_login_shows_enrolment_then_asks_only_for_the_code(client, reviewer):
    """Without a confirmed authenticator the code step shows a QR code and the secret; afterwards only the code."""
    assert _password_step(client, reviewer.email).status_code == 303
    page = client.get("/review/login/code").get_data(as_text=True)
    assert "Set up your authenticator" in page
    assert 'src="data:image/svg+xml' in page
    secret = reviewer.totp_secret
    assert " ".join(secret[i:i + 4] for i in range(0, len(secret), 4)) in page
    response = client.post("/review/login/code", data={"csrf_token": csrf_from(client, "/review/login/code"),
                                                       "code": otp_for(reviewer)})
    assert response.status_code == 303 and response.headers["Location"].endswith("/review/")
    assert client.get("/review/").status_code == 200
    assert db.session.get(Staff, reviewer.id, populate_existing=True).totp_last_step is not None

    other = client.application.test_client()
    assert _password_step(other, reviewer.email).status_code == 303
    page = other.get("/review/login/code").get_data(as_text=True)
    assert "Enter your code" in page and "Set up your authenticator" not in page and secret not in page


def test_wrong_password_wrong_code_and_replayed_code_are_refused(client, app, reviewer):
    """Bad passwords and codes get clear errors and are audited; a code works once."""
    response = _password_step(client, reviewer.email, "not the password")
    assert response.status_code == 401 and "do not match" in response.get_data(as_text=True)
    assert _password_step(client, reviewer.email).status_code == 303
    bad = client.post("/review/login/code", data={"csrf_token": csrf_from(client, "/review/login/code"),
                                                  "code": "000000" if otp_for(reviewer) != "000000" else "111111"})
    assert bad.status_code == 401 and "not valid" in bad.get_data(as_text=True)
    code = otp_for(reviewer)
    ok = client.post("/review/login/code", data={"csrf_token": csrf_from(client, "/review/login/code"), "code": code})
    assert ok.status_code == 303

    second = app.test_client()
    assert _password_step(second, reviewer.email).status_code == 303
    replay = second.post("/review/login/code", data={"csrf_token": csrf_from(second, "/review/login/code"),
                                                     "code": code})
    assert replay.status_code == 401
    failures = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "staff.login_failed")).all()
    assert [f.after["step"] for f in failures] == ["password", "totp", "totp"]
    assert db.session.scalars(select(AuditEntry.action).where(AuditEntry.action == "staff.login")).all() == [
        "staff.login"]


def test_disabled_staff_cannot_log_in(client, new_staff):
    gone = new_staff("gone@review.example", "reviewer", active=False)
    assert _password_step(client, gone.email).status_code == 401


def test_code_step_without_password_step_starts_again(client):
    response = client.get("/review/login/code")
    assert response.status_code == 303 and response.headers["Location"].endswith("/review/login")


def test_session_is_renewed_at_login(client, reviewer):
    """Whatever the session held before login is gone after it (no session fixation)."""
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
    login(client, reviewer)
    with client.session_transaction() as sess:
        assert "planted" not in sess and sess["_user_id"] == f"staff:{reviewer.id}"


def test_login_is_rate_limited(client, reviewer):
    """Repeated password attempts get 429 (per IP and per account)."""
    statuses = [_password_step(client, reviewer.email, "wrong password!").status_code for _ in range(6)]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429


def test_anonymous_visitors_are_sent_to_the_staff_login_and_back(client, reviewer):
    response = client.get("/review/dashboard")
    assert response.status_code == 302 and "/review/login?next=/review/dashboard" in response.headers["Location"]
    token = csrf_from(client, "/review/login?next=/review/dashboard")
    client.post("/review/login", data={"csrf_token": token, "email": reviewer.email, "password": PASSWORD,
                                       "next": "/review/dashboard"})
    response = client.post("/review/login/code", data={"csrf_token": csrf_from(client, "/review/login/code"),
                                                       "code": otp_for(reviewer)})
    assert response.headers["Location"].endswith("/review/dashboard")


def test_next_never_leaves_the_review_area(client, reviewer):
    token = csrf_from(client, "/review/login")
    client.post("/review/login", data={"csrf_token": token, "email": reviewer.email, "password": PASSWORD,
                                       "next": "https://evil.example/"})
    response = client.post("/review/login/code", data={"csrf_token": csrf_from(client, "/review/login/code"),
                                                       "code": otp_for(reviewer)})
    assert response.headers["Location"].endswith("/review/")
