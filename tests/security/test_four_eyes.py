"""issue 13: four eyes that one person cannot defeat: invitations, a second admin for senior and admin
roles, and confirmations by new staff flagged in the audit log and on the dashboard."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from appeals import db
from appeals.db import utcnow
from appeals.models import AuditEntry, OutboxMessage, Staff, StaffInvitation
from appeals.services import staff as staff_service
from appeals.services.audit import Actor
from appeals.services.errors import Forbidden, NotFound
from tests.conftest import PASSWORD, csrf_from
from tests.reviewer.conftest import login

LINK = re.compile(r"http://testserver(/review/invitations/[A-Za-z0-9_-]+)")


def invitation_link(email: str) -> str | None:
    """The link in the invitation email to `email`, as only its mailbox sees it."""
    bodies = db.session.scalars(select(OutboxMessage.body).where(OutboxMessage.to_addr == email)).all()
    links = [m.group(1) for body in bodies for m in [LINK.search(body)] if m]
    return links[-1] if links else None


def post(client, url: str, page: str, **data):
    return client.post(url, data={"csrf_token": csrf_from(client, page), **data})


def accept(client, link: str, password: str = "the invitee's own password"):
    page = client.get(link).get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    return client.post(link, data={"csrf_token": csrf_from(client, link), "password": password,
                                   "code": pyotp.TOTP(secret).now()}), secret


@pytest.fixture
def admins(make_staff):
    return make_staff("alice@review.example", "admin"), make_staff("bob@review.example", "admin")


def test_the_sock_puppet_attack_fails(app, admins):
    """Alice alone cannot make a senior she controls: no password of hers, no secret shown, no link
    until Bob confirms, and she cannot confirm her own grant."""
    alice, bob = admins
    a = app.test_client()
    login(a, alice)
    # The old attack: a password of the admin's choosing. The form takes none, and ignores one sent.
    response = post(a, "/review/staff", "/review/staff", email="puppet@example.org", role="senior",
                    password="chosen by alice!")
    assert response.status_code == 303
    staff_page = a.get("/review/staff").get_data(as_text=True)
    assert 'name="password"' not in staff_page and "waits for a second admin" in staff_page
    assert db.session.scalar(select(Staff).where(Staff.email == "puppet@example.org")) is None
    assert invitation_link("puppet@example.org") is None  # nothing sent yet
    invitation = db.session.scalar(select(StaffInvitation))
    # Alice cannot confirm her own grant, on the page or in the service.
    assert post(a, f"/review/staff/invitations/{invitation.id}/confirm", "/review/staff").status_code == 403
    with pytest.raises(Forbidden):
        staff_service.confirm_invitation(alice, Actor("staff", alice.id, alice.email), invitation.id)
    assert invitation_link("puppet@example.org") is None
    # Nothing Alice saw can be used as the link.
    assert "/review/invitations/" not in staff_page
    # Bob confirms: only now does the one-time link go, to the invitee's mailbox alone.
    b = app.test_client()
    login(b, bob)
    assert post(b, f"/review/staff/invitations/{invitation.id}/confirm", "/review/staff").status_code == 303
    link = invitation_link("puppet@example.org")
    assert link is not None and link not in b.get("/review/staff").get_data(as_text=True)


def test_an_invitee_sets_their_own_password_and_totp_once(app, admins):
    alice, _bob = admins
    staff_service.invite(alice, Actor("staff", alice.id, alice.email), "newbie@example.org", "reviewer")
    link = invitation_link("newbie@example.org")
    newcomer = app.test_client()
    response, secret = accept(newcomer, link)
    assert response.status_code == 303
    member = db.session.scalar(select(Staff).where(Staff.email == "newbie@example.org"))
    assert member.role == "reviewer" and member.totp_secret == secret and member.enrolled_at is not None
    assert newcomer.get("/review/").status_code == 200
    # Once only.
    assert app.test_client().get(link).status_code == 404
    with pytest.raises(NotFound):
        staff_service.accept_invitation(link.rsplit("/", 1)[1], "another password!", "123456", Actor.system())
    # The audit trail never holds the token or the secret.
    for entry in db.session.scalars(select(AuditEntry)):
        assert secret not in str(entry.after) and link.rsplit("/", 1)[1] not in str(entry.after)


def test_a_lone_admin_invites_without_confirmation(make_staff):
    lone = make_staff("lone@review.example", "admin")
    invitation = staff_service.invite(lone, Actor("staff", lone.id, lone.email), "sr@example.org", "senior")
    assert invitation.status == "sent" and invitation_link("sr@example.org")


def test_confirmations_by_new_staff_are_flagged(app, make_staff, make_account):
    """A senior enrolled in the last 7 days confirming an approval is flagged in the audit log and dashboard."""
    from appeals.services import review
    from tests.reviewer.conftest import make_appeal

    old_senior = make_staff("veteran@review.example", "senior")
    old_senior.created_at = old_senior.enrolled_at = utcnow() - timedelta(days=30)
    new_senior = make_staff("fresh@review.example", "senior")
    new_senior.enrolled_at = utcnow() - timedelta(days=1)
    db.session.commit()
    actors = {s.id: Actor("staff", s.id, s.email) for s in (old_senior, new_senior)}

    def approve_and_confirm(approver, confirmer, user_id):
        appeal = make_appeal(make_account(user_id, f"acct{user_id}"))
        review.claim(approver, appeal.id, actors[approver.id])
        review.decide(approver, appeal.id, actors[approver.id], "approve", remedy="remove",
                      statement="Included in error.")
        review.confirm(confirmer, appeal.id, actors[confirmer.id])
        return appeal

    flagged = approve_and_confirm(old_senior, new_senior, "500001")
    clean = approve_and_confirm(new_senior, old_senior, "500002")
    entries = {e.object_id: e for e in db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "appeal.confirm"))}
    assert entries[str(flagged.id)].after["flag"] == "new_staff"
    assert "flag" not in entries[str(clean.id)].after
    browser = app.test_client()
    login(browser, old_senior)
    dashboard = browser.get("/review/dashboard").get_data(as_text=True)
    assert f"appeal #{flagged.id}" in dashboard and f"appeal #{clean.id}<" not in dashboard


def test_cli_staff_add_is_unchanged(runner, settings_env):
    """The contract: `appeals staff add ... --password-stdin --json` prints the TOTP secret."""
    import json

    from appeals.commands.staff import staff

    result = runner.invoke(staff, ["add", "--email", "ops@review.example", "--role", "admin", "--password-stdin",
                                   "--json"], input=PASSWORD + "\n", env=settings_env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"id", "email", "role", "totp_secret", "otpauth_uri"}
