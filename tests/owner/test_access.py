"""Who may do what: every owner route and API endpoint, for anonymous, owner A, owner B and staff."""

from __future__ import annotations

import pytest

from appeals import db
from appeals.models import Appeal
from appeals.services import auth
from tests.owner.conftest import GOOD_APPEAL, csrf_from, file_for, staff_session, web_login

ROLES = ("anonymous", "staff", "owner_b", "owner_a")  # A last: its allowed actions may change the appeal


@pytest.fixture
def world(app, owner_a, owner_b, make_staff):
    """Owner A with an open appeal, owner B without one, a reviewer; a logged-in client per role."""
    appeal = file_for(owner_a)
    staff = make_staff("reviewer@example.org", role="senior")
    clients = {role: app.test_client() for role in ROLES}
    assert web_login(clients["owner_a"], owner_a.screen_name).status_code == 302
    assert web_login(clients["owner_b"], owner_b.screen_name).status_code == 302
    staff_session(app, clients["staff"], staff)
    tokens = {"owner_a": auth.issue_token(owner_a), "owner_b": auth.issue_token(owner_b),
              "staff": auth.issue_token(staff)}
    return {"appeal_id": appeal.id, "clients": clients, "tokens": tokens}


def _csrf(client, role: str) -> str:
    # Any page with a form carries the session's token: owners have /me, others the login page.
    return csrf_from(client, "/me" if role.startswith("owner") else "/login")


_FORM = {**GOOD_APPEAL, "statement": "Filed through the matrix."}

# method, path ({id} = owner A's appeal), form data, expected status per role.
WEB = [
    ("GET", "/me", None, {"anonymous": 302, "staff": 403, "owner_b": 200, "owner_a": 200}),
    ("GET", "/appeals/new", None, {"anonymous": 302, "staff": 403, "owner_b": 200, "owner_a": 200}),
    ("POST", "/appeals/new", _FORM, {"anonymous": 302, "staff": 403, "owner_b": 303, "owner_a": 409}),
    ("GET", "/appeals/{id}", None, {"anonymous": 302, "staff": 403, "owner_b": 404, "owner_a": 200}),
    ("GET", "/appeals/999999", None, {"anonymous": 302, "staff": 403, "owner_b": 404, "owner_a": 404}),
    ("POST", "/appeals/{id}/reply", {"body": "hello"}, {"anonymous": 302, "staff": 403, "owner_b": 404, "owner_a": 409}),
    ("POST", "/appeals/{id}/withdraw", {"confirm": "yes"},
     {"anonymous": 302, "staff": 403, "owner_b": 404, "owner_a": 303}),
    ("POST", "/logout", {}, {"anonymous": 302, "staff": 302, "owner_b": 302, "owner_a": 302}),
    ("GET", "/login", None, {"anonymous": 200, "staff": 200, "owner_b": 302, "owner_a": 302}),
]


@pytest.mark.parametrize("method, path, data, expected", WEB, ids=[f"{m} {p}" for m, p, _, _ in WEB])
def test_web_access(world, method, path, data, expected):
    url = path.format(id=world["appeal_id"])
    for role in ROLES:
        client = world["clients"][role]
        if method == "GET":
            response = client.get(url)
        else:
            response = client.post(url, data={**data, "csrf_token": _csrf(client, role)})
        assert response.status_code == expected[role], (role, response.get_data(as_text=True)[:300])
        if expected[role] == 302 and role == "anonymous" and path != "/logout":
            assert "/login" in response.headers["Location"]
    db.session.expire_all()
    appeal = db.session.get(Appeal, world["appeal_id"])
    # Only owner A's own withdraw changes A's appeal.
    assert appeal.status == ("withdrawn" if path.endswith("withdraw") else "filed")


API = [
    ("GET", "/api/v1/me", None, {"anonymous": 401, "staff": 200, "owner_b": 200, "owner_a": 200}),
    ("GET", "/api/v1/me/footprint", None, {"anonymous": 401, "staff": 403, "owner_b": 200, "owner_a": 200}),
    ("GET", "/api/v1/me/appeals", None, {"anonymous": 401, "staff": 403, "owner_b": 200, "owner_a": 200}),
    ("POST", "/api/v1/appeals", _FORM, {"anonymous": 401, "staff": 403, "owner_b": 201, "owner_a": 409}),
    ("GET", "/api/v1/appeals/{id}", None,
     {"anonymous": 401, "staff": 200, "owner_b": 404, "owner_a": 200}),
    ("POST", "/api/v1/appeals/{id}/messages", {"body": "hello"},
     {"anonymous": 401, "staff": 403, "owner_b": 404, "owner_a": 409}),
    ("POST", "/api/v1/appeals/{id}/withdraw", {}, {"anonymous": 401, "staff": 403, "owner_b": 404, "owner_a": 200}),
]


@pytest.mark.parametrize("method, path, data, expected", API, ids=[f"{m} {p}" for m, p, _, _ in API])
def test_api_access(world, client, method, path, data, expected):
    url = path.format(id=world["appeal_id"])
    for role in ROLES:
        token = world["tokens"].get(role)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = client.open(url, method=method, headers=headers, json=data)
        want = expected[role]
        assert response.status_code == want, (role, response.get_json())
        if want >= 400:
            body = response.get_json()
            assert body["code"] and body["message"]
    db.session.expire_all()
    appeal = db.session.get(Appeal, world["appeal_id"])
    assert appeal.status == ("withdrawn" if path.endswith("withdraw") else "filed")


def test_bad_token_is_401(client, world):
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401 and response.get_json()["code"] == "unauthorized"


def test_csrf_is_enforced_on_every_owner_form(world):
    """Each owner form without its token is refused (400) and changes nothing."""
    client = world["clients"]["owner_a"]
    url_id = world["appeal_id"]
    for url, data in [
        ("/appeals/new", _FORM),
        (f"/appeals/{url_id}/reply", {"body": "hello"}),
        (f"/appeals/{url_id}/withdraw", {"confirm": "yes"}),
        ("/logout", {}),
    ]:
        assert client.post(url, data=data).status_code == 400, url
        assert client.post(url, data={**data, "csrf_token": "forged"}).status_code == 400, url
    assert world["clients"]["anonymous"].post("/login", data={"username": "x", "password": "y"}).status_code == 400
    db.session.expire_all()
    assert db.session.get(Appeal, url_id).status == "filed"
    assert client.get("/me").status_code == 200  # the forged logout did not log A out
