"""The owner's pages follow the request layer: a malformed version is refused (422), never ignored."""

from __future__ import annotations

from appeals import db
from appeals.models import Appeal, Message
from tests.owner.conftest import csrf_from, file_for, move, web_login


def test_a_malformed_version_on_the_owner_pages_is_refused_and_changes_nothing(client, owner_a):
    appeal = file_for(owner_a)
    move(appeal.id, "in_review", "info_requested")
    web_login(client, owner_a.screen_name)
    reply = client.post(f"/appeals/{appeal.id}/reply",
                        data={"csrf_token": csrf_from(client, "/me"), "body": "Here.", "version": "7x"})
    withdraw = client.post(f"/appeals/{appeal.id}/withdraw",
                           data={"csrf_token": csrf_from(client, "/me"), "confirm": "yes", "version": "-1"})
    assert reply.status_code == 422 and withdraw.status_code == 422
    assert "not valid" in reply.get_data(as_text=True) and "not valid" in withdraw.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Appeal, appeal.id).status == "info_requested"
    assert [m.author_kind for m in db.session.query(Message).filter_by(appeal_id=appeal.id)] == ["staff"]
