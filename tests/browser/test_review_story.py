"""Reviewer, senior and owner in Chromium at 1366x900 and 390x844: claim, use a template without losing the
decision, decide; the senior confirms in two deliberate steps; the correction runs; the owner reads what was
done. Plus the keyboard-only path from claim to decision."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from appeals import db
from appeals.services import evidence, filing, reference
from appeals.services.audit import Actor
from tests.browser.conftest import assert_page_ok
from tests.browser.test_owner_story import login as owner_login
from tests.conftest import PASSWORD, work_in_process
from tests.reviewer.conftest import otp_for

pytestmark = pytest.mark.browser


def staff_login(page, base: str, staff) -> None:
    page.goto(f"{base}/review/login")
    page.get_by_label("Email").fill(staff.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("Continue|Log in|Next", re.I)).click()
    page.wait_for_url(re.compile(r".*/review/login/code.*"))
    page.locator("input[name=code]").fill(otp_for(staff))
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url(re.compile(r".*/review/?(\?.*)?$"))


def _file(account) -> int:
    png = io.BytesIO()
    Image.new("RGB", (30, 20), (0, 0, 0)).save(png, "PNG")
    appeal = filing.file_appeal(account, Actor("account", account.id, account.screen_name), {
        "reason": "compromised", "statement": "Hijacked from March to May 2019.", "contact_email": "o@example.org",
        "compromised_from": "2019-03-01", "compromised_until": "2019-05-01"},
        files=[evidence.Upload("security-email.png", png.getvalue())])
    appeal_id = appeal.id
    db.session.remove()
    return appeal_id


def _outcome_has_focus(page) -> bool:
    return page.evaluate("!!document.activeElement && document.activeElement.hasAttribute('data-outcome')")


def _drain() -> None:
    from workers import jobs, queues

    jobs.sweep()
    work_in_process([queues.corrections_queue(queues.connect())])


def test_reviewer_senior_owner_story(live_server, new_page, corpus_account, make_staff):
    reference.seed_defaults()
    reviewer = make_staff("rita@review.example", "reviewer")
    senior = make_staff("sam@review.example", "senior")
    appeal_id = _file(corpus_account)

    page = new_page()
    staff_login(page, live_server, reviewer)
    assert_page_ok(page)
    page.locator(f"a[href='/review/appeals/{appeal_id}']").first.click()
    page.wait_for_url(f"**/review/appeals/{appeal_id}")
    assert page.locator("#activity-chart rect.window").count() == 1  # the claimed window is drawn
    assert page.get_by_role("link", name="security-email.png").count() == 1  # evidence beside the chart
    assert_page_ok(page)

    page.get_by_role("button", name=re.compile("Claim this appeal")).click()
    page.wait_for_url(f"**/review/appeals/{appeal_id}")
    assert _outcome_has_focus(page)

    page.locator("#a-approve").check()
    page.locator("#r-remove").check()
    page.evaluate("window.__sameDocument = true")
    page.locator("#t-statement").select_option(label="Approval: included in error")
    page.locator("#decide").get_by_role("button", name="Use template").click()
    statement = page.locator("#f-statement").input_value()
    assert statement.startswith(f"We reviewed your appeal about @{corpus_account.screen_name}")
    assert page.evaluate("window.__sameDocument === true")  # no reload
    assert page.locator("#a-approve").is_checked() and page.locator("#r-remove").is_checked()
    page.get_by_role("button", name="Record decision").click()
    page.wait_for_url(f"**/review/appeals/{appeal_id}")
    assert _outcome_has_focus(page) and "Approved" in page.locator("[data-outcome]").inner_text()
    assert_page_ok(page)

    senior_page = new_page()
    staff_login(senior_page, live_server, senior)
    senior_page.goto(f"{live_server}/review/appeals/{appeal_id}")
    assert senior_page.get_by_role("heading", name="Confirmation: what will change").is_visible()
    assert_page_ok(senior_page)
    senior_page.get_by_role("button", name="Confirm and correct the published data").click()
    senior_page.locator(".error-summary").wait_for()  # one click is not enough
    senior_page.wait_for_load_state()
    assert senior_page.evaluate("document.activeElement.classList.contains('error-summary')")
    assert senior_page.evaluate("location.pathname") == f"/review/appeals/{appeal_id}"
    assert_page_ok(senior_page)
    senior_page.get_by_label(re.compile("I checked the changes above")).check()
    senior_page.get_by_role("button", name="Confirm and correct the published data").click()
    senior_page.wait_for_url(f"**/review/appeals/{appeal_id}")
    assert _outcome_has_focus(senior_page) and "Confirmed" in senior_page.locator("[data-outcome]").inner_text()

    _drain()
    owner = new_page()
    owner_login(owner, live_server, corpus_account.screen_name)
    assert "datasets were corrected" in owner.content() and "What remains" in owner.content()
    assert_page_ok(owner)
    owner.goto(f"{live_server}/appeals/{appeal_id}")
    text = owner.locator("#current-status").inner_text()
    assert "What was done" in text and "Corrected release" in text and "will be removed" not in text
    assert_page_ok(owner)
    # The downloader follows the corrected release from the owner's page.
    owner.locator("#current-status a[href*='/releases/']").first.click()
    owner.wait_for_url("**/releases/*")
    assert_page_ok(owner)


def test_claim_to_decision_by_keyboard(live_server, browser, axe_source, corpus_account, make_staff):
    reference.seed_defaults()
    reviewer = make_staff("kim@review.example", "reviewer")
    appeal_id = _file(corpus_account)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.add_init_script(script=axe_source)
    page = context.new_page()
    try:
        staff_login(page, live_server, reviewer)
        page.goto(f"{live_server}/review/appeals/{appeal_id}")
        page.locator("body").focus()
        page.keyboard.press("?")
        assert page.locator("#shortcuts").is_visible()
        assert page.evaluate("document.activeElement.id") == "shortcuts"
        page.keyboard.press("Escape")
        assert page.locator("#shortcuts").is_hidden()
        with page.expect_navigation(url=f"**/review/appeals/{appeal_id}"):
            page.keyboard.press("c")  # claim
        page.wait_for_load_state()
        assert _outcome_has_focus(page)
        page.keyboard.press("d")  # to the decision
        assert page.evaluate("document.activeElement.id") == "a-approve"
        page.keyboard.press("ArrowDown")  # radios: approve -> deny
        assert page.evaluate("document.activeElement.id") == "a-deny" and page.locator("#a-deny").is_checked()
        # Tab past the remaining radios to the remedy group, the reason, the statement.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.name") == "remedy"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "f-reason_code"
        while page.locator("#f-reason_code").input_value() != "evidence_insufficient":
            page.keyboard.press("ArrowDown")  # a reason for a denial
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "f-statement"
        page.keyboard.type("The posting pattern does not change at the dates given.")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent.trim()") == "Record decision"
        with page.expect_navigation(url=f"**/review/appeals/{appeal_id}"):
            page.keyboard.press("Enter")
        page.wait_for_load_state()
        assert _outcome_has_focus(page)
        assert "Denied" in page.locator("[data-outcome]").inner_text()
    finally:
        context.close()


def test_reviewer_pages_fit_and_queue_keys(live_server, new_page, corpus_account, make_staff):
    reference.seed_defaults()
    admin = make_staff("ada@review.example", "admin")
    appeal_id = _file(corpus_account)
    page = new_page()
    staff_login(page, live_server, admin)
    page.locator("body").focus()
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.getAttribute('href')") == f"/review/appeals/{appeal_id}"
    page.keyboard.press("?")
    assert page.locator("#shortcuts").is_visible()
    assert_page_ok(page)
    for path in ("/review/dashboard", "/review/audit", "/review/reference"):
        page.goto(live_server + path)
        assert_page_ok(page)
