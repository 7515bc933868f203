"""Owner login: screen name or email, argon2 passwords, suspended accounts, session renewal, rate limits."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.owner.conftest import csrf_from, web_login

TOO_MANY = "Too many login attempts. Wait a minute and try again."


@pytest.fixture
def jo(make_account):
    return make_account("1001", "Jo_Baker", email="Jo@Example.org")


@pytest.mark.parametrize("username", ["Jo_Baker", "jo_baker", "@jo_baker", "jo@example.org", "JO@EXAMPLE.ORG"])
def test_login_with_screen_name_or_email(client, jo, username):
    response = web_login(client, username)
    assert response.status_code == 302 and response.headers["Location"].endswith("/me")
    page = client.get("/me").get_data(as_text=True)
    assert "@Jo_Baker" in page and "Log out" in page


@pytest.mark.parametrize("username, password", [("jo_baker", "wrong password!"), ("nobody", PASSWORD)])
def test_wrong_credentials_get_one_clear_message(client, jo, username, password):
    response = web_login(client, username, password)
    assert response.status_code == 401
    assert "do not match an account" in response.get_data(as_text=True)
    assert client.get("/me").status_code == 302  # still anonymous


def test_empty_fields_are_named(client, jo):
    response = client.post("/login", data={"csrf_token": csrf_from(client, "/login"), "username": "", "password": ""})
    assert response.status_code == 422
    assert 'id="e-username"' in response.get_data(as_text=True)


def test_suspended_account_can_log_in_and_is_told(client, make_account):
    make_account("1002", "suspended_sam", suspended=True)
    assert web_login(client, "suspended_sam").status_code == 302
    assert "This account is suspended" in client.get("/me").get_data(as_text=True)


def test_login_renews_the_session(client, jo):
    """Nothing planted in the session before login survives it; each login gets a new server-side stamp."""
    client.get("/login")
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
    web_login(client, "jo_baker")
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess["_user_id"] == f"account:{jo.id}"
        first = sess["_stamp"]
    client.post("/logout", data={"csrf_token": csrf_from(client, "/me")})
    web_login(client, "jo_baker")
    with client.session_transaction() as sess:
        assert sess["_stamp"]["gen"] == first["gen"] + 1  # logout ended the old one on the server


@pytest.mark.parametrize("spoiled", ["{id} ", " {id}", "0", "\u00b2", "x{id}", "1" * 19, ""])
def test_a_session_whose_id_is_not_the_one_written_is_no_session(client, jo, spoiled):
    """Only the exact "kind:id" that get_id wrote loads a principal (the request layer's number rule)."""
    web_login(client, "jo_baker")
    assert client.get("/me").status_code == 200
    with client.session_transaction() as sess:
        sess["_user_id"] = "account:" + spoiled.format(id=jo.id)
    assert client.get("/me").status_code == 302


def test_logout_ends_the_session(client, jo):
    web_login(client, "jo_baker")
    response = client.post("/logout", data={"csrf_token": csrf_from(client, "/me")})
    assert response.status_code == 302
    assert client.get("/me").status_code == 302
    with client.session_transaction() as sess:
        assert "_user_id" not in sess


def test_logout_and_login_need_the_csrf_token(client, jo):
    assert client.post("/login", data={"username": "jo_baker", "password": PASSWORD}).status_code == 400
    web_login(client, "jo_baker")
    assert client.post("/logout").status_code == 400
    assert client.get("/me").status_code == 200  # still logged in


@pytest.mark.parametrize("target, expected", [("/appeals/new", "/appeals/new"), ("//evil.example/x", "/me"),
                                              ("https://evil.example/", "/me")])
def test_login_returns_only_to_local_pages(client, jo, target, expected):
    page = client.get(f"/login?next={target}")
    token = csrf_from(client, "/login")
    assert page.status_code == 200
    response = client.post("/login", data={"csrf_token": token, "username": "jo_baker", "password": PASSWORD,
                                           "next": target})
    assert response.headers["Location"] == expected


def test_rate_limit_per_account(client, jo, settings):
    """Failed attempts at one account are limited; the blocked attempt is told plainly, even with the right password."""
    limit = int(settings.login_rate_limit.split(" ")[0])
    for _ in range(limit):
        assert web_login(client, "jo_baker", "wrong password!").status_code == 401
    blocked = web_login(client, "jo_baker", PASSWORD)
    assert blocked.status_code == 429
    assert TOO_MANY in blocked.get_data(as_text=True)
    assert client.get("/me").status_code == 302


def test_rate_limit_per_ip(client, jo, settings):
    """Guessing at many accounts from one address is limited too."""
    limit = int(settings.login_rate_limit.split(" ")[0])
    for i in range(limit):
        assert web_login(client, f"someone_{i}", "wrong password!").status_code == 401
    blocked = web_login(client, "jo_baker", PASSWORD)
    assert blocked.status_code == 429 and TOO_MANY in blocked.get_data(as_text=True)
    other_address = client.post("/login", environ_base={"REMOTE_ADDR": "10.0.0.9"},
                                data={"csrf_token": csrf_from(client, "/login"), "username": "jo_baker",
                                      "password": PASSWORD})
    assert other_address.status_code == 302


def test_successful_logins_do_not_use_up_the_limit(client, jo, settings):
    """Every attempt takes a unit first (atomic); a successful login gives it back."""
    limit = int(settings.login_rate_limit.split(" ")[0])
    for _ in range(limit + 2):
        assert web_login(client, "jo_baker").status_code == 302
        client.post("/logout", data={"csrf_token": csrf_from(client, "/me")})
