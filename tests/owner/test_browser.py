"""The owner's whole path in Chromium on a phone-sized screen: log in, see the footprint, file, follow, withdraw."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_owner_path_in_a_browser(live_server, browser_page, owner_a):
    page = browser_page
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(f"{live_server}/me")
    assert "/login" in page.url  # anonymous visitors are sent to log in first

    page.get_by_label("Screen name or email").fill(owner_a.screen_name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server}/me")
    expect(page.get_by_role("heading", name="Where does your account appear?")).to_be_visible()
    assert page.locator("section.card h3").count() >= 1
    # Nothing overflows sideways on a phone except inside the scrollable table wrapper.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    page.get_by_role("link", name="File an appeal").click()
    page.get_by_label("My account was compromised").check()
    for field, value in (("compromised_from-day", "2"), ("compromised_from-month", "1"), ("compromised_from-year", "2019"),
                         ("compromised_until-day", "3"), ("compromised_until-month", "2"), ("compromised_until-year", "2019")):
        page.locator(f"#f-{field}").fill(value)
    page.get_by_label("Your statement").fill("Someone took over my account in January 2019.")
    page.get_by_label("Email for updates about this appeal").fill("me@example.org")
    page.get_by_role("button", name="File my appeal").click()

    page.wait_for_url(re.compile(r".*/appeals/\d+$"))
    assert page.get_by_role("status").first.inner_text().startswith("Your appeal #")
    assert "waiting for a reviewer" in page.locator("#current-status").inner_text()
    assert "Someone took over my account" in page.content()

    page.get_by_text("I no longer want this appeal").click()
    page.get_by_label("Yes, withdraw appeal").check()
    page.get_by_role("button", name="Withdraw my appeal").click()
    page.wait_for_load_state()
    assert "Withdrawn" in page.locator("#current-status").inner_text()

    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state()
    page.goto(f"{live_server}/me")
    assert "/login" in page.url
