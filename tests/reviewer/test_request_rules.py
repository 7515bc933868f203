"""The reviewer's page and API follow the request layer: one text rule, one version rule."""

from __future__ import annotations

from sqlalchemy import func, select

from appeals import db
from appeals.models import Appeal, InternalNote
from appeals.requests import TEXT_MAX, VERSION_MESSAGE
from tests.reviewer.conftest import bearer, csrf_from, login, token_for


def test_staff_text_has_the_owners_limit_and_refuses_nul(app, client, appeal, reviewer):
    token = token_for(app.test_client(), reviewer)
    assert client.post(f"/api/v1/appeals/{appeal.id}/claim", headers=bearer(token)).status_code == 200
    too_long = client.post(f"/api/v1/appeals/{appeal.id}/notes", headers=bearer(token),
                           json={"body": "n" * (TEXT_MAX + 1)})
    nul = client.post(f"/api/v1/appeals/{appeal.id}/notes", headers=bearer(token), json={"body": "a\x00b"})
    crlf = client.post(f"/api/v1/appeals/{appeal.id}/notes", headers=bearer(token),
                       json={"body": "line\r\n" * (TEXT_MAX // 5)})
    assert (too_long.status_code, nul.status_code, crlf.status_code) == (422, 422, 201)
    assert set(too_long.get_json()["fields"]) == {"body"} and set(nul.get_json()["fields"]) == {"body"}
    assert "\r" not in crlf.get_json()["body"]
    assert db.session.scalar(select(func.count()).select_from(InternalNote)) == 1


def test_a_malformed_version_is_a_422_on_the_page_and_in_the_api(app, client, appeal, reviewer):
    login(client, reviewer)
    page = client.post(f"/review/appeals/{appeal.id}/claim",
                       data={"csrf_token": csrf_from(client, f"/review/appeals/{appeal.id}"), "version": "abc"})
    token = token_for(app.test_client(), reviewer)
    api = client.post(f"/api/v1/appeals/{appeal.id}/claim", headers=bearer(token), json={"version": "1"})
    assert page.status_code == 422 and api.status_code == 422
    assert api.get_json()["fields"] == {"version": str(VERSION_MESSAGE)}
    db.session.expire_all()
    assert db.session.get(Appeal, appeal.id).assigned_to_id is None
