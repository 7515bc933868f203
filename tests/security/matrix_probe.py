"""Helpers of the access-matrix test: the cast's sessions and tokens, and one request per cell."""

from __future__ import annotations

from appeals import db
from appeals.services import auth
from tests.public.conftest import login_as

ROLES = ("anonymous", "owner", "other_owner", "reviewer", "senior", "admin", "researcher", "researcher_no_grant")


def clients(app, cast) -> dict:
    """A logged-in web client and a bearer token per role (anonymous: neither)."""
    out = {}
    for number, role in enumerate(ROLES, start=1):
        client = app.test_client()
        # Each role from its own address, as in life: the per-address login limit is not shared.
        client.environ_base["REMOTE_ADDR"] = f"192.0.2.{number}"
        token = None
        if role != "anonymous":
            principal = cast[role]
            login_as(client, principal)
            token = auth.issue_token(principal)
        out[role] = (client, token)
    db.session.remove()
    return out


def request(client, token, method: str, path: str):
    headers = {"Authorization": f"Bearer {token}"} if token and path.startswith("/api/") else {}
    kwargs = {"headers": headers}
    if method == "POST" and path.startswith("/api/"):
        kwargs["json"] = {}
    elif method == "POST":
        kwargs["data"] = {}
    return client.open(path, method=method, **kwargs)
