"""Email at every change of status, delivered over real SMTP (aiosmtpd) to the contact address."""

from __future__ import annotations

from sqlalchemy import select

from appeals import db
from appeals.models import OutboxMessage
from tests.owner.conftest import csrf_from, move, web_login


def test_each_status_change_is_mailed_to_the_contact_address(app, smtp_server, client, owner_a, owner_b,
                                                             deliver_mail):
    web_login(client, owner_a.screen_name)
    client.post("/appeals/new", data={"csrf_token": csrf_from(client, "/appeals/new"), "reason": "other",
                                      "statement": "Mine.", "contact_email": "updates@example.org"})
    assert smtp_server == []  # the request only wrote the outbox row; the worker sends it
    deliver_mail()
    [filed] = smtp_server
    assert filed["To"] == "updates@example.org"
    appeal_id = int(filed["Subject"].split("#")[1].split(":")[0])
    assert filed["Subject"] == f"Your appeal #{appeal_id}: Filed"
    assert f"http://testserver/appeals/{appeal_id}" in filed.get_payload()

    move(appeal_id, "in_review", "info_requested")
    from appeals.services import notify

    notify.deliver_pending()  # the review side delivers after its own commit
    client.post(f"/appeals/{appeal_id}/reply", data={"csrf_token": csrf_from(client, "/me"), "body": "Here."})
    client.post(f"/appeals/{appeal_id}/withdraw", data={"csrf_token": csrf_from(client, "/me"), "confirm": "yes"})
    deliver_mail()

    subjects = [m["Subject"] for m in smtp_server]
    assert subjects == [f"Your appeal #{appeal_id}: {title}" for title in
                        ("Filed", "In review", "Information requested", "In review", "Withdrawn")]
    assert {m["To"] for m in smtp_server} == {"updates@example.org"}
    for message in smtp_server:
        body = message.get_payload()
        assert owner_b.user_id not in body and owner_b.screen_name not in body
        assert owner_a.user_id not in body  # not even the recipient's own id needs to travel by mail
    assert set(db.session.scalars(select(OutboxMessage.status))) == {"sent"}


def test_without_smtp_mail_goes_to_the_outbox_and_the_log(client, owner_a, caplog, deliver_mail):
    caplog.set_level("INFO", logger="appeals.mail")
    web_login(client, owner_a.screen_name)
    client.post("/appeals/new", data={"csrf_token": csrf_from(client, "/appeals/new"), "reason": "other",
                                      "statement": "Mine.", "contact_email": "updates@example.org"})
    assert db.session.scalars(select(OutboxMessage.status)).one() == "pending"
    deliver_mail()
    message = db.session.scalars(select(OutboxMessage)).one()
    assert message.status == "logged" and message.to_addr == "updates@example.org"
    assert "Your appeal #" in caplog.text and "updates@example.org" in caplog.text
