"""Public pages and the owner's status page in Chromium at both sizes: they fit, pass axe-core, and the status
page follows a running correction by itself (static script polling JSON)."""

from __future__ import annotations

import pytest

from appeals import db
from appeals.models import Appeal
from appeals.services import appeals as appeal_machine, filing
from appeals.services.audit import Actor
from tests.browser.conftest import assert_page_ok
from tests.browser.test_owner_story import login

pytestmark = pytest.mark.browser

GOOD = {"reason": "included_in_error", "statement": "I run a bakery account.", "contact_email": "o@example.org"}


def _move(appeal_id: int, *statuses: str, data: dict | None = None) -> None:
    appeal = db.session.get(Appeal, appeal_id)
    for status in statuses:
        appeal_machine.transition(appeal, status, Actor("system", None, "test"), f"test.{status}", data=data)
    db.session.commit()
    db.session.remove()


def test_downloader_pages_fit_and_pass_axe(live_server, new_page, corpus):
    page = new_page()
    name = corpus[0].name
    for path in ("/", "/datasets", f"/datasets/{name}", f"/datasets/{name}/releases/1", "/verify",
                 "/researchers/apply"):
        page.goto(live_server + path)
        assert_page_ok(page)
    page.goto(f"{live_server}/datasets/{name}/download")
    page.get_by_role("button", name="Get the download links").click()
    summary = page.locator(".error-summary")
    summary.wait_for()  # the form posts and the page comes back: wait for it, and for its focus script
    page.wait_for_load_state()
    assert summary.is_visible() and page.evaluate("document.activeElement.classList.contains('error-summary')")
    hrefs = [a.get_attribute("href") for a in summary.locator("a").all()]
    assert hrefs == ["#f-email", "#f-accept_terms"]
    assert_page_ok(page)
    page.get_by_label("Email address").fill("reader@example.org")
    page.get_by_label("I accept the terms of use").check()
    page.get_by_role("button", name="Get the download links").click()
    page.wait_for_load_state()
    assert page.locator("a[href*='/files/']").count() >= 1 or "link" in page.content().lower()
    assert_page_ok(page)


def test_owner_status_page_follows_the_correction(live_server, new_page, corpus_account):
    appeal = filing.file_appeal(corpus_account, Actor("account", corpus_account.id, "o"), dict(GOOD))
    appeal.decision_remedy = "remove"
    db.session.commit()
    appeal_id = appeal.id
    _move(appeal_id, "in_review", "approved")
    page = new_page()
    login(page, live_server, corpus_account.screen_name)
    page.goto(f"{live_server}/appeals/{appeal_id}")
    assert "Not final yet" in page.locator("#current-status").inner_text()
    assert_page_ok(page)

    _move(appeal_id, "correction_queued", "correcting")
    # A locator wait, not wait_for_function: the strict CSP (no eval) refuses string predicates.
    page.locator("[data-status-title]", has_text="Correcting").wait_for(timeout=15_000)
    releases = {d.dataset: d.version + 1 for d in db.session.get(Appeal, appeal_id).datasets}
    _move(appeal_id, "corrected", data={"releases": releases, "remedy": "remove"})
    page.wait_for_selector("text=What was done", timeout=15_000)  # the page reloaded itself once final
    text = page.locator("#current-status").inner_text()
    assert "was removed from" in text or "were removed" in text
    assert "What remains" in text
    assert_page_ok(page)
    page.goto(f"{live_server}/me")
    assert "datasets were corrected" in page.content()
    assert_page_ok(page)
