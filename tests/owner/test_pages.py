"""The owner's pages: footprint, filing form, status page with reply and withdraw; all user text escaped."""

from __future__ import annotations

import re

from sqlalchemy import select

from appeals import db
from appeals.models import Appeal
from appeals.services import footprint
from tests.owner.conftest import GOOD_APPEAL, csrf_from, file_for, move, web_login


def _text(response) -> str:
    return response.get_data(as_text=True)


def test_home_shows_own_footprint_only(client, owner_a, owner_b):
    web_login(client, owner_a.screen_name)
    page = _text(client.get("/me"))
    for entry in footprint.for_owner(owner_a):
        assert entry["dataset"] in page
        assert f"version {entry['version']}" in page
        assert "{:,}".format(entry["authored_tweets"]) in page
    assert owner_a.user_id in page
    assert owner_b.user_id not in page and owner_b.screen_name not in page
    assert "File an appeal" in page


def test_outsider_is_told_there_is_nothing_to_appeal(client, outsider):
    web_login(client, outsider.screen_name)
    assert "does not appear in any published dataset" in _text(client.get("/me"))
    form = _text(client.get("/appeals/new"))
    assert "nothing to appeal" in form and 'name="statement"' not in form
    response = client.post("/appeals/new", data={**GOOD_APPEAL, "csrf_token": csrf_from(client, "/me")})
    assert response.status_code == 409


def test_file_through_the_form_then_follow_it(client, owner_a):
    web_login(client, owner_a.screen_name)
    form = _text(client.get("/appeals/new"))
    assert f'value="{owner_a.email}"' in form  # contact email pre-filled
    statement = 'It was a bakery <script>alert("x")</script> & nothing else.'
    response = client.post("/appeals/new", data={
        "csrf_token": csrf_from(client, "/appeals/new"), "reason": "compromised", "statement": statement,
        "compromised_from": "2019-01-02", "compromised_until": "2019-03-04", "contact_email": "me@example.org"})
    assert response.status_code == 303
    appeal = db.session.scalars(select(Appeal)).one()
    assert response.headers["Location"].endswith(f"/appeals/{appeal.id}")

    page = _text(client.get(f"/appeals/{appeal.id}"))
    assert "has been filed" in page and "me@example.org" in page
    assert "&lt;script&gt;" in page and "<script>alert" not in page
    assert "Filed" in page and "waiting for a reviewer" in page
    assert "2 January 2019" in page and "4 March 2019" in page
    home = _text(client.get("/me"))
    assert f"Appeal #{appeal.id}" in home and "You can file a new appeal once your open appeal is closed" in home


def test_form_errors_are_shown_next_to_fields_and_values_kept(client, owner_a):
    web_login(client, owner_a.screen_name)
    response = client.post("/appeals/new", data={
        "csrf_token": csrf_from(client, "/appeals/new"), "reason": "compromised", "statement": "kept text",
        "contact_email": "broken", "compromised_from_day": "1", "compromised_from_month": "5",
        "compromised_from_year": "2019", "compromised_until_day": "1", "compromised_until_month": "4",
        "compromised_until_year": "2019"})
    assert response.status_code == 422
    page = _text(response)
    for name, input_id in (("contact_email", "f-contact_email"), ("compromised_until", "f-compromised_until-day")):
        assert f'id="e-{name}"' in page
        field = re.search(rf'<input id="{input_id}"[^>]*>', page, re.S).group(0)
        assert 'aria-invalid="true"' in field
    assert "kept text" in page and 'value="broken"' in page and 'value="2019"' in page
    # The summary lists the problems in the order the form asks them, each linked to its field.
    summary = re.search(r'<div class="error-summary".*?</div>', page, re.S).group(0)
    links = re.findall(r'href="#([^"]+)"', summary)
    assert links == ["f-compromised_until-day", "f-contact_email"]
    assert "<title>Error: " in page
    assert db.session.scalars(select(Appeal)).first() is None


def test_second_appeal_form_points_to_the_open_one(client, owner_a):
    appeal = file_for(owner_a)
    web_login(client, owner_a.screen_name)
    page = _text(client.get("/appeals/new"))
    assert f"already have an open appeal (#{appeal.id})" in page and f"/appeals/{appeal.id}" in page
    response = client.post("/appeals/new", data={**GOOD_APPEAL, "csrf_token": csrf_from(client, "/me")})
    assert response.status_code == 409


def test_denied_appeal_shows_reasons_and_reappeal_asks_what_is_new(client, owner_a):
    appeal = file_for(owner_a)
    move(appeal.id, "in_review", "denied", note="The account posted <b>campaign</b> material daily.")
    web_login(client, owner_a.screen_name)
    page = _text(client.get(f"/appeals/{appeal.id}"))
    assert "Denied" in page and "&lt;b&gt;campaign&lt;/b&gt;" in page and "You can file a new appeal from" in page
    form = _text(client.get("/appeals/new"))
    assert 'name="new_information"' in form
    response = client.post("/appeals/new", data={**GOOD_APPEAL, "csrf_token": csrf_from(client, "/me")})
    assert response.status_code == 409 and 'id="e-new_information"' in _text(response)
    response = client.post("/appeals/new", data={**GOOD_APPEAL, "new_information": "Police report attached.",
                                                 "csrf_token": csrf_from(client, "/me")})
    assert response.status_code == 303


def test_reply_form_when_information_is_requested(client, owner_a):
    appeal = file_for(owner_a)
    move(appeal.id, "in_review", "info_requested")
    web_login(client, owner_a.screen_name)
    page = _text(client.get(f"/appeals/{appeal.id}"))
    assert "Which shop do you run?" in page and 'name="body"' in page
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    empty = client.post(f"/appeals/{appeal.id}/reply",
                        data={"csrf_token": csrf_from(client, "/me"), "body": " ", "version": version})
    assert empty.status_code == 422 and "Your reply is required" in _text(empty)
    sent = client.post(f"/appeals/{appeal.id}/reply",
                       data={"csrf_token": csrf_from(client, "/me"), "body": "The one on Main Street.",
                             "version": version})
    assert sent.status_code == 303
    page = _text(client.get(f"/appeals/{appeal.id}"))
    assert "You wrote" in page and "The one on Main Street." in page and 'name="body"' not in page
    stale = client.post(f"/appeals/{appeal.id}/reply",
                        data={"csrf_token": csrf_from(client, "/me"), "body": "again", "version": version})
    assert stale.status_code == 409


def test_withdraw_needs_the_confirmation_box(client, owner_a):
    appeal = file_for(owner_a)
    web_login(client, owner_a.screen_name)
    unconfirmed = client.post(f"/appeals/{appeal.id}/withdraw", data={"csrf_token": csrf_from(client, "/me")})
    assert unconfirmed.status_code == 422 and "Tick the box" in _text(unconfirmed)
    db.session.expire_all()
    assert db.session.get(Appeal, appeal.id).status == "filed"
    done = client.post(f"/appeals/{appeal.id}/withdraw",
                       data={"csrf_token": csrf_from(client, "/me"), "confirm": "yes"})
    assert done.status_code == 303
    page = _text(client.get(f"/appeals/{appeal.id}"))
    assert "Withdrawn" in page and "Withdraw my appeal" not in page


def test_corrected_appeal_lists_the_new_releases(client, owner_a):
    appeal = file_for(owner_a)
    move(appeal.id, "in_review", "approved", "correction_queued", "correcting")
    move(appeal.id, "corrected", data={"releases": {"ira_demo_a": 2, "ira_demo_b": 3}})
    web_login(client, owner_a.screen_name)
    page = _text(client.get(f"/appeals/{appeal.id}"))
    assert "Corrected release" in page and "ira_demo_a version 2" in page and "ira_demo_b version 3" in page
    assert "/datasets/ira_demo_a/releases/2" in page  # the release is a link, not a dead end


def test_pages_fit_a_phone_and_label_every_field(client, owner_a):
    web_login(client, owner_a.screen_name)
    page = _text(client.get("/appeals/new"))
    assert 'name="viewport" content="width=device-width' in page
    for name in re.findall(r'<(?:input|textarea)[^>]*\bid="([^"]+)"', page):
        assert f'for="{name}"' in page, name
