"""Researcher access: applying, logging in, and admin decisions (approve, reject, revoke), audited and emailed."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from appeals import db
from appeals.models import AuditEntry, OutboxMessage, Researcher
from appeals.services import researchers
from appeals.services.audit import Actor
from appeals.services.errors import Forbidden, Invalid, Unauthorized
from tests.public.conftest import PASSWORD, login_as, login_researcher, post_form

APPLICATION = {
    "name": "Ada Researcher", "institution": "University of Examples", "email": "ada@uni.example",
    "purpose": "Comparing state-linked campaigns across platforms.", "password": PASSWORD, "accept_licence": "yes",
}


def outbox(to: str) -> list[OutboxMessage]:
    return db.session.scalars(select(OutboxMessage).where(OutboxMessage.to_addr == to).order_by(OutboxMessage.id)).all()


def test_apply_records_a_pending_application_and_acknowledges_it(client, settings):
    """A complete application is pending, its password hashed, the licence acceptance timed, an email sent."""
    response = post_form(client, "/researchers/apply", APPLICATION)
    assert response.status_code == 200 and "Thank you" in response.get_data(as_text=True)
    researcher = db.session.scalar(select(Researcher))
    assert researcher.status == "pending" and researcher.licence_accepted_at is not None
    assert researcher.password_hash.startswith("$argon2id$")
    assert [m.subject for m in outbox("ada@uni.example")] == ["We received your researcher application"]
    assert db.session.scalar(select(AuditEntry.action)) == "researcher.apply"


@pytest.mark.parametrize("field, value", [
    ("accept_licence", ""), ("name", ""), ("institution", "  "), ("email", "nope"), ("purpose", ""),
    ("password", "short"),
])
def test_an_incomplete_application_changes_nothing(client, settings, field, value):
    """Each missing or bad field is named; nothing is stored or sent."""
    response = post_form(client, "/researchers/apply", {**APPLICATION, field: value})
    assert response.status_code == 422
    assert f'id="e-{field}"' in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Researcher)) == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_applying_twice_reveals_nothing_and_tells_the_address(client, make_researcher):
    """A second application with a known email looks the same, changes nothing, and emails that address."""
    make_researcher("ada@uni.example", status="rejected")
    response = post_form(client, "/researchers/apply", {**APPLICATION, "email": "ADA@uni.example"})
    assert response.status_code == 200 and "Thank you" in response.get_data(as_text=True)
    assert db.session.scalar(select(Researcher.status)) == "rejected"
    assert len(outbox("ada@uni.example")) == 1


def test_login_renews_the_session_and_shows_the_grant(client, make_researcher):
    """A researcher logs in with email and password and sees their status; a wrong password is refused."""
    make_researcher("ada@uni.example", status="approved", expires_in=timedelta(days=30))
    bad = login_researcher(client, "ada@uni.example", "wrong password!")
    assert bad.status_code == 401
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    ok = login_researcher(client, "ada@uni.example")
    assert ok.status_code == 302
    with client.session_transaction() as session:
        assert "planted" not in session
    page = client.get("/researchers/me").get_data(as_text=True)
    assert "Approved" in page and "until" in page


def test_login_is_rate_limited(client, make_researcher):
    """Password guessing is slowed: after the configured attempts, 429."""
    make_researcher("ada@uni.example")
    statuses = [login_researcher(client, "ada@uni.example", "wrong password!").status_code for _ in range(6)]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429


def test_login_never_redirects_off_site(client, make_researcher):
    make_researcher("ada@uni.example")
    response = post_form(client, "/researchers/login?next=//evil.example/x",
                         {"email": "ada@uni.example", "password": PASSWORD})
    assert response.headers["Location"] == "/researchers/me"


def test_admin_approves_with_expiry_rejects_and_revokes(client, make_staff, make_researcher):
    """Each decision is audited with before/after, emailed to the researcher, and takes effect."""
    admin = make_staff("admin@example.org", role="admin")
    pending = make_researcher("p@uni.example", status="pending")
    other = make_researcher("o@uni.example", status="pending", name="Other Applicant")
    login_as(client, admin)
    page = client.get("/admin/researchers")
    assert page.status_code == 200 and "Other Applicant" in page.get_data(as_text=True)

    until = date.today() + timedelta(days=90)
    response = post_form(client, f"/admin/researchers/{pending.id}/approve", {"expires_on": until.isoformat()},
                         form_url="/admin/researchers")
    assert response.status_code == 302
    db.session.expire_all()
    approved = db.session.get(Researcher, pending.id)
    assert approved.status == "approved" and approved.expires_at.date() == until + timedelta(days=1)
    assert approved.decided_by_id == admin.id

    assert post_form(client, f"/admin/researchers/{other.id}/reject", {"reason": "No research purpose given."},
                     form_url="/admin/researchers").status_code == 302
    assert post_form(client, f"/admin/researchers/{pending.id}/revoke", {"reason": "Shared the data."},
                     form_url="/admin/researchers").status_code == 302
    db.session.expire_all()
    assert db.session.get(Researcher, other.id).status == "rejected"
    assert db.session.get(Researcher, pending.id).status == "revoked"

    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["researcher.approve", "researcher.reject", "researcher.revoke"]
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "researcher.revoke"))
    assert entry.before["status"] == "approved" and entry.after["status"] == "revoked"
    assert entry.actor_kind == "staff" and entry.actor_id == admin.id
    assert [m.subject for m in outbox("p@uni.example")] == [
        "Your researcher access was approved", "Your researcher access was revoked"]
    assert "No research purpose given." in outbox("o@uni.example")[0].body


def test_a_rejection_needs_a_reason_and_changes_nothing_without_one(client, make_staff, make_researcher):
    admin = make_staff("admin@example.org", role="admin")
    pending = make_researcher("p@uni.example", status="pending")
    login_as(client, admin)
    response = post_form(client, f"/admin/researchers/{pending.id}/reject", {"reason": "  "},
                         form_url="/admin/researchers", follow_redirects=True)
    assert "Give a reason" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Researcher, pending.id).status == "pending"
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_an_expired_grant_no_longer_gives_access(make_researcher):
    """Access ends at the expiry time without anyone acting."""
    researcher = make_researcher(expires_in=timedelta(seconds=-1))
    assert researchers.access_status(researcher) == "expired"


@pytest.mark.parametrize("who, expected", [
    ("anonymous", 401), ("reviewer", 403), ("senior", 403), ("owner", 403), ("researcher", 403), ("admin", 200),
])
@pytest.mark.parametrize("route", ["list", "approve", "reject", "revoke"])
def test_only_admins_manage_researchers(app, make_staff, make_account, make_researcher, who, expected, route):
    """Every admin route, every kind of principal: only admin staff get through."""
    target = make_researcher("t@uni.example", status="pending" if route != "revoke" else "approved")
    client = app.test_client()
    if who in ("reviewer", "senior", "admin"):
        login_as(client, make_staff(f"{who}@example.org", role=who))
    elif who == "owner":
        login_as(client, make_account("555", "anowner", email="owner@example.org"))
    elif who == "researcher":
        login_researcher(client, make_researcher("r@uni.example").email)
    if route == "list":
        response = client.get("/admin/researchers")
    else:
        token_page = client.get("/researchers/apply").get_data(as_text=True)
        token = token_page.split('name="csrf_token" value="')[1].split('"')[0]
        response = client.post(f"/admin/researchers/{target.id}/{route}", data={"reason": "r", "csrf_token": token})
    if expected == 401:
        # Sent to the staff login page (or a 401 where the reviewer area has none).
        assert response.status_code == 401 or "/review/login" in response.headers["Location"]
    else:
        assert response.status_code == (302 if expected == 200 and route != "list" else expected)
    db.session.expire_all()
    if expected != 200:
        assert db.session.get(Researcher, target.id).status == ("pending" if route != "revoke" else "approved")


def test_services_refuse_non_admins_directly(make_staff, make_researcher):
    """The service layer is the protection, whatever the page shows."""
    reviewer = make_staff("rev@example.org", role="reviewer")
    target = make_researcher(status="pending")
    actor = Actor("staff", reviewer.id, reviewer.email)
    with pytest.raises(Forbidden):
        researchers.approve(reviewer, target.id, None, actor)
    with pytest.raises(Unauthorized):
        researchers.reject(None, target.id, "reason", actor)
    with pytest.raises(Invalid):
        researchers.approve(make_staff("adm@example.org", role="admin"), target.id, date(2000, 1, 1), actor)
