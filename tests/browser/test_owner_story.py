"""The owner's story in Chromium at 1366x900 and 390x844: file a compromised-account appeal with dates and a
screenshot, by mouse and by keyboard alone; every page fits the screen and passes axe-core."""

from __future__ import annotations

import re

import pytest
from PIL import Image
from sqlalchemy import select

from appeals import db
from appeals.models import Appeal, Attachment
from tests.browser.conftest import assert_page_ok
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser
APPEAL_URL = re.compile(r".*/appeals/\d+$")


def _screenshot(tmp_path):
    path = tmp_path / "security-email.png"
    Image.new("RGB", (60, 40), (10, 90, 200)).save(path)
    return path


def login(page, base: str, screen_name: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Screen name or email").fill(screen_name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/me")


def test_owner_files_a_compromised_account_appeal(live_server, new_page, corpus_account, tmp_path):
    page = new_page()
    page.goto(f"{live_server}/help")
    assert_page_ok(page)
    login(page, live_server, corpus_account.screen_name)
    assert_page_ok(page)
    page.get_by_role("link", name="File an appeal").click()
    page.wait_for_url("**/appeals/new")
    assert_page_ok(page)

    # A first attempt with a date typed the way the old hint said: nothing typed is lost.
    page.get_by_label("My account was compromised").check()
    page.locator("#f-compromised_from-day").fill("2019-03-31")
    page.get_by_label("Your statement").fill("Someone took over my account in March 2019.")
    page.get_by_role("button", name="File my appeal").click()
    summary = page.locator(".error-summary")
    summary.wait_for()  # the form posts and the page comes back: wait for it, and for its focus script
    page.wait_for_load_state()
    assert summary.is_visible()
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    assert page.title().startswith("Error: ")
    links = summary.locator("a")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [
        "#f-compromised_from-day", "#f-compromised_until-day"]
    assert page.get_by_label("Your statement").input_value() == "Someone took over my account in March 2019."
    assert page.get_by_label("My account was compromised").is_checked()
    assert_page_ok(page)
    links.first.click()
    assert page.evaluate("document.activeElement.id") == "f-compromised_from-day"

    for part, value in (("from-day", "31"), ("from-month", "3"), ("from-year", "2019"),
                        ("until-day", "2"), ("until-month", "5"), ("until-year", "2019")):
        page.locator(f"#f-compromised_{part.replace('-', '-', 1)}").fill(value)
    page.get_by_label("Evidence (optional)").set_input_files(str(_screenshot(tmp_path)))
    page.get_by_role("button", name="File my appeal").click()
    page.wait_for_url(APPEAL_URL)
    assert "waiting for a reviewer" in page.locator("#current-status").inner_text()
    assert "31 March 2019 to 2 May 2019" in page.content()
    assert page.get_by_role("link", name="security-email.png").is_visible()
    assert_page_ok(page)

    appeal = db.session.scalars(select(Appeal)).one()
    assert str(appeal.compromised_from) == "2019-03-31" and str(appeal.compromised_until) == "2019-05-02"
    assert db.session.scalars(select(Attachment)).one().media_type == "image/png"
    db.session.remove()


def test_filing_by_keyboard_alone(live_server, browser, axe_source, corpus_account):
    """Tab and type through the whole form; each key press lands where it should."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.add_init_script(script=axe_source)
    page = context.new_page()
    try:
        login(page, live_server, corpus_account.screen_name)
        page.goto(f"{live_server}/appeals/new")
        page.locator("body").focus()

        def focused() -> str:
            return page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()")

        # Skip link first, then the header's links, then the form.
        page.keyboard.press("Tab")
        assert focused() == "Skip to content"
        page.keyboard.press("Enter")
        while not focused().startswith("f-reason"):
            page.keyboard.press("Tab")
        assert focused() == "f-reason"
        page.keyboard.press("ArrowDown")  # radios move with arrows: to "compromised"
        assert focused() == "f-reason-compromised" and page.locator("#f-reason-compromised").is_checked()
        for expected, text in (("f-compromised_from-day", "31"), ("f-compromised_from-month", "3"),
                               ("f-compromised_from-year", "2019"), ("f-compromised_until-day", "2"),
                               ("f-compromised_until-month", "5"), ("f-compromised_until-year", "2019"),
                               ("f-statement", "Hijacked in March 2019."), ("f-contact_email", None)):
            page.keyboard.press("Tab")
            assert focused() == expected
            if text:
                page.keyboard.type(text)
        page.keyboard.press("Control+a")
        page.keyboard.type("owner@example.org")
        page.keyboard.press("Tab")
        assert focused() == "f-evidence"
        page.keyboard.press("Tab")
        assert focused() == "File my appeal"
        page.keyboard.press("Enter")
        page.wait_for_url(APPEAL_URL)
        assert "Hijacked in March 2019." in page.content()
        assert_page_ok(page)
    finally:
        context.close()
