"""The reviewer's pages: evidence from the published data, decisions, conflicts, templates, notes, admin."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from appeals import db
from appeals.models import Appeal, AuditEntry, MessageTemplate, ReasonCode, Staff
from appeals.services import filing
from appeals.services.audit import Actor
from tests.reviewer.conftest import csrf_from, login, make_appeal

VERSION_RE = re.compile(r'name="version" value="(\d+)"')


@pytest.fixture
def filed(corpus_account, seeded):
    """A real appeal filed through the owners' service by the corpus's most prolific author."""
    appeal = filing.file_appeal(corpus_account, Actor("account", corpus_account.id, corpus_account.screen_name), {
        "reason": "compromised", "statement": "My account was taken over <b>in 2018</b>.",
        "contact_email": "owner@example.org", "compromised_from": "2018-01-01", "compromised_until": "2018-06-30",
    })
    # Plain values: the pages' requests end their sessions, so ORM rows would be detached.
    return {"id": appeal.id, "datasets": [d.dataset for d in appeal.datasets], "user_id": corpus_account.user_id}


def post(client, path: str, page: str, **form):
    return client.post(path, data={"csrf_token": csrf_from(client, page), **form})


def version_on(client, page: str) -> str:
    return VERSION_RE.search(client.get(page).get_data(as_text=True)).group(1)


def test_appeal_page_shows_evidence_footprint_and_samples_in_both_variants(client, filed, reviewer):
    """Statement (escaped), compromise dates, footprint per dataset, published rows hashed and unhashed."""
    login(client, reviewer)
    body = client.get(f"/review/appeals/{filed['id']}").get_data(as_text=True)
    assert "&lt;b&gt;in 2018&lt;/b&gt;" in body and "<b>in 2018</b>" not in body
    assert "2018-01-01" in body and "2018-06-30" in body
    for name in filed['datasets']:
        assert f"Sample rows in {name}, as published" in body
    assert "Hashed variant" in body and "Unhashed variant" in body
    assert "Tweets by the account" in body and "Profile row:" in body
    assert "Tweets by the account: none." not in body  # the prolific author's published tweets are listed
    # The unhashed variant names the account; the page shows the published rows as they are.
    assert filed['user_id'] in body


def test_web_claim_approve_confirm_with_plan(app, filed, reviewer, senior):
    """Claim, approve with a remedy; the senior sees the plan per dataset and variant, then confirms."""
    reviewer_client, senior_client = app.test_client(), app.test_client()
    login(reviewer_client, reviewer)
    page = f"/review/appeals/{filed['id']}"
    response = post(reviewer_client, page + "/claim", page, version=version_on(reviewer_client, page))
    assert response.status_code == 303
    response = post(reviewer_client, page + "/decision", page, version=version_on(reviewer_client, page),
                    action="approve", remedy="remove", reason_code="compromised_verified",
                    statement="Control was lost in 2018; the platform confirmed the takeover.")
    assert response.status_code == 303
    body = reviewer_client.get(page).get_data(as_text=True)
    assert "You approved this appeal: another senior reviewer must confirm it." in body
    assert "Confirm and correct" not in body

    login(senior_client, senior)
    body = senior_client.get(page).get_data(as_text=True)
    assert "Confirmation: what will change" in body and "Confirm and correct the published data" in body
    for name in filed['datasets']:
        assert f'<th scope="row">{name}</th>' in body
    # One click is not enough: the senior must tick that they checked what will change.
    refused = post(senior_client, page + "/confirm", page, version=version_on(senior_client, page))
    assert refused.status_code == 422 and "Tick the box to say you checked what will change" in refused.get_data(as_text=True)
    assert db.session.get(Appeal, filed['id'], populate_existing=True).status == "approved"
    response = post(senior_client, page + "/confirm", page, version=version_on(senior_client, page),
                    confirm_changes="yes")
    assert response.status_code == 303
    assert db.session.get(Appeal, filed['id'], populate_existing=True).status in (
        "correction_queued", "correcting", "corrected")


def test_stale_form_gets_409_and_keeps_the_typed_statement(app, reviewer, senior, owner, seeded):
    """A decision posted from a page loaded before someone else acted is refused with a conflict message."""
    appeal = make_appeal(owner)
    client = app.test_client()
    login(client, senior)
    page = f"/review/appeals/{appeal.id}"
    post(client, page + "/claim", page, version=version_on(client, page))
    old_version = version_on(client, page)
    post(client, page + "/notes", page, note="Looked at the referring tweets.")  # the appeal changes
    response = post(client, page + "/decision", page, version=old_version, action="deny",
                    reason_code="correctly_included", statement="My carefully typed statement.")
    assert response.status_code == 409
    body = response.get_data(as_text=True)
    assert "changed since you loaded it" in body and "My carefully typed statement." in body
    assert db.session.get(Appeal, appeal.id, populate_existing=True).status == "in_review"


def test_template_fills_known_placeholders_and_unfilled_ones_are_refused(client, reviewer, owner, seeded):
    """Choosing a template pre-fills the statement; sending it with a placeholder left gives 422."""
    appeal = make_appeal(owner)
    login(client, reviewer)
    page = f"/review/appeals/{appeal.id}"
    post(client, page + "/claim", page, version=version_on(client, page))
    template = db.session.scalar(select(MessageTemplate).where(MessageTemplate.name.startswith("Denial")))
    body = client.get(f"{page}?template={template.id}&target=statement").get_data(as_text=True)
    assert "@bakery_jo" in body and "{explanation}" in body and "{screen_name}" not in body
    response = post(client, page + "/decision", page, version=version_on(client, page), action="deny",
                    reason_code="evidence_insufficient",
                    statement="We reviewed your appeal about @bakery_jo: {explanation}")
    body = response.get_data(as_text=True)
    # The error sits by the field (and in the decision form's summary, linked to it), not at the page top.
    assert response.status_code == 422 and 'id="e-statement"' in body and "Still contains {explanation}" in body
    assert 'href="#f-statement"' in body and "We reviewed your appeal about @bakery_jo: {explanation}" in body


def test_notes_stay_internal_and_messages_reach_the_owner(app, reviewer, owner, seeded):
    appeal = make_appeal(owner)
    client = app.test_client()
    login(client, reviewer)
    page = f"/review/appeals/{appeal.id}"
    post(client, page + "/claim", page, version=version_on(client, page))
    post(client, page + "/notes", page, note="Internal: similar to appeal 12.")
    post(client, page + "/messages", page, version=version_on(client, page), message="Could you send a screenshot?")
    body = client.get(page).get_data(as_text=True)
    assert "Internal: similar to appeal 12." in body and "Could you send a screenshot?" in body
    from appeals.services.appeals import timeline

    owner_view = str(timeline(db.session.get(Appeal, appeal.id), for_owner=True))
    assert "screenshot" in owner_view and "Internal" not in owner_view


def test_admin_adds_and_disables_staff_and_manages_reason_codes(client, admin, reviewer):
    """Admins invite staff (validated), disable them, add reason codes; every change is audited."""
    login(client, admin)
    bad = post(client, "/review/staff", "/review/staff", email="not-an-email", role="boss")
    assert bad.status_code == 422
    body = bad.get_data(as_text=True)
    assert "Enter an email address" in body and "Choose one of" in body
    ok = post(client, "/review/staff", "/review/staff", email="newbie@review.example", role="reviewer")
    assert ok.status_code == 303
    assert post(client, f"/review/staff/{reviewer.id}/active", "/review/staff", active="0").status_code == 303
    assert db.session.get(Staff, reviewer.id, populate_existing=True).active is False
    assert post(client, "/review/reference", "/review/reference", kind="code", code="bot_network",
                label="Part of an automated network", applies_to="deny", active="1").status_code == 303
    assert db.session.scalar(select(ReasonCode).where(ReasonCode.code == "bot_network")).active
    actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.actor_id == admin.id)).all()
    assert {"staff.invite", "staff.disable", "reason_code.save"} <= set(actions)
    audit_page = client.get("/review/audit?action=staff.").get_data(as_text=True)
    assert "staff.invite" in audit_page and "staff.disable" in audit_page and "reason_code.save" not in audit_page


@pytest.mark.parametrize("template_id", ["abc", "0", "\u00b2", "1" * 19])
def test_a_malformed_template_id_is_a_422_not_a_new_template(client, admin, template_id):
    """It was read as "no id", which created a template instead of updating one; now refused, nothing saved."""
    login(client, admin)
    before = db.session.scalar(select(func.count()).select_from(MessageTemplate))
    response = post(client, "/review/reference", "/review/reference", kind="template", template_id=template_id,
                    name="Brand new", body="Hello", active="1")
    assert response.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(MessageTemplate)) == before
