"""The access matrix: every reviewer route (pages and API) against every role."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from appeals.services import review
from tests.reviewer.conftest import actor, bearer, csrf_from, login, make_appeal, token_for

ROLES = ("anonymous", "owner", "reviewer", "senior", "admin")
RANK = {"reviewer": 0, "senior": 1, "admin": 2}


def _prepare(kind: str, appeal, me, others) -> None:
    """Put the appeal in the state where the route's action is possible for an allowed caller."""
    holder = me if me is not None else others["reviewer"]
    if kind in ("holder", "decide", "message", "release"):
        review.claim(holder, appeal.id, actor(holder))
    elif kind == "approved":
        approver = others["approver"]
        review.claim(approver, appeal.id, actor(approver))
        review.decide(approver, appeal.id, actor(approver), "approve", remedy="remove", statement="Authentic.")


# (method, path, form, minimum role, state)
PAGES = [
    ("GET", "/review/", None, "reviewer", None),
    ("GET", "/review/?status=all&sort=footprint", None, "reviewer", None),
    ("POST", "/review/claim-next", {}, "reviewer", None),
    ("GET", "/review/appeals/{id}", None, "reviewer", None),
    ("POST", "/review/appeals/{id}/claim", {}, "reviewer", None),
    ("POST", "/review/appeals/{id}/release", {}, "reviewer", "release"),
    ("POST", "/review/appeals/{id}/decision", {"action": "escalate", "statement": "Need a senior."}, "reviewer",
     "decide"),
    ("POST", "/review/appeals/{id}/messages", {"message": "We are on it."}, "reviewer", "message"),
    ("POST", "/review/appeals/{id}/notes", {"note": "Looked at it."}, "reviewer", None),
    ("POST", "/review/appeals/{id}/confirm", {"confirm_changes": "yes"}, "senior", "approved"),
    ("POST", "/review/appeals/{id}/send-back", {"reason": "Check again."}, "senior", "approved"),
    ("GET", "/review/dashboard", None, "reviewer", None),
    ("GET", "/review/audit", None, "reviewer", None),
    ("GET", "/review/audit?action=appeal.", None, "reviewer", None),
    ("POST", "/review/corrections/999/retry", {}, "admin", None),
    ("GET", "/review/staff", None, "admin", None),
    ("POST", "/review/staff", {"email": "new@review.example", "role": "reviewer", "password": "a long password"},
     "admin", None),
    ("POST", "/review/staff/{other}/active", {"active": "0"}, "admin", None),
    ("POST", "/review/staff/{other}/reset-totp", {}, "admin", None),
    ("GET", "/review/reference", None, "admin", None),
    ("POST", "/review/reference", {"kind": "code", "code": "new_code", "label": "New", "applies_to": "deny",
                                   "active": "1"}, "admin", None),
]


def owner_login(client) -> None:
    """Log the owner in through the owners' login form."""
    response = client.post("/login", data={"csrf_token": csrf_from(client, "/login"), "username": "bakery_jo",
                                           "password": PASSWORD})
    assert response.status_code in (302, 303), response.status_code


@pytest.fixture
def cast(new_staff, new_account, seeded):
    """One member per role, plus the other reviewer and the approver the states need."""
    return {
        "reviewer": new_staff("rita@review.example", "reviewer"),
        "senior": new_staff("sam@review.example", "senior"),
        "admin": new_staff("ada@review.example", "admin"),
        "approver": new_staff("abe@review.example", "senior"),
        "owner": new_account("1000001", "bakery_jo", email="jo@example.org"),
    }


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method,path,form,minimum,state", PAGES, ids=[f"{m} {p}" for m, p, *_ in PAGES])
def test_page_access(client, cast, role, method, path, form, minimum, state):
    """Below the route's role: 403 (owners included), or the staff login for anonymous visitors."""
    appeal = make_appeal(cast["owner"])
    me = cast.get(role) if role in RANK else None
    if role == "owner":
        owner_login(client)
    elif me is not None:
        login(client, me)
    _prepare(state, appeal, me, cast)
    url = path.format(id=appeal.id, other=cast["approver"].id)
    if method == "GET":
        response = client.get(url)
    else:
        token = csrf_from(client, "/review/login")
        response = client.post(url, data={"csrf_token": token, **form})
    allowed = role in RANK and RANK[role] >= RANK[minimum]
    if allowed:
        assert response.status_code in (200, 303), (response.status_code, response.get_data(as_text=True)[:2000])
        assert "/review/login" not in response.headers.get("Location", "")
    elif role == "anonymous":
        assert response.status_code == 302 and "/review/login" in response.headers["Location"]
    else:
        assert response.status_code == 403


def test_owner_gets_403_even_for_an_appeal_that_does_not_exist(client, cast):
    owner_login(client)
    assert client.get("/review/appeals/987654").status_code == 403


def test_posts_need_the_csrf_token(client, cast):
    login(client, cast["reviewer"])
    appeal = make_appeal(cast["owner"])
    assert client.post(f"/review/appeals/{appeal.id}/claim").status_code == 400


# (method, path, json, minimum role, state)
API = [
    ("GET", "/api/v1/queue", None, "reviewer", None),
    ("POST", "/api/v1/queue/claim-next", None, "reviewer", None),
    ("GET", "/api/v1/review/appeals/{id}", None, "reviewer", None),
    ("POST", "/api/v1/appeals/{id}/claim", None, "reviewer", None),
    ("POST", "/api/v1/appeals/{id}/release", None, "reviewer", "release"),
    ("POST", "/api/v1/appeals/{id}/decision", {"action": "escalate", "statement": "Senior please."}, "reviewer",
     "decide"),
    ("POST", "/api/v1/appeals/{id}/notes", {"body": "Noted."}, "reviewer", None),
    ("POST", "/api/v1/review/appeals/{id}/messages", {"body": "Hello."}, "reviewer", "message"),
    ("POST", "/api/v1/appeals/{id}/confirm", None, "senior", "approved"),
    ("POST", "/api/v1/appeals/{id}/send-back", {"reason": "Again."}, "senior", "approved"),
    ("GET", "/api/v1/audit", None, "reviewer", None),
    ("GET", "/api/v1/dashboard", None, "reviewer", None),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method,path,body,minimum,state", API, ids=[f"{m} {p}" for m, p, *_ in API])
def test_api_access(client, cast, role, method, path, body, minimum, state):
    """401 without a token, 403 below the route's role (owners included), success otherwise."""
    appeal = make_appeal(cast["owner"])
    me = cast.get(role) if role in RANK else None
    headers = {}
    if role == "owner":
        response = client.post("/api/v1/tokens", json={"username": "bakery_jo", "password": PASSWORD})
        headers = bearer(response.get_json()["token"])
    elif me is not None:
        headers = bearer(token_for(client, me))
    _prepare(state, appeal, me, cast)
    url = path.format(id=appeal.id)
    response = client.open(url, method=method, json=body, headers=headers)
    allowed = role in RANK and RANK[role] >= RANK[minimum]
    if allowed:
        assert response.status_code in (200, 201, 204), response.get_json()
    elif role == "anonymous":
        assert response.status_code == 401 and response.get_json()["code"] == "unauthorized"
    else:
        assert response.status_code == 403, response.get_json()
