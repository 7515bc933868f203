"""A browser story in Chromium: a reviewer claims and approves, a senior sees the change and confirms."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from appeals.services import filing
from appeals.services.audit import Actor
from tests.conftest import PASSWORD
from tests.reviewer.conftest import otp_for

pytestmark = pytest.mark.browser


def staff_login(page, base: str, member) -> None:
    page.goto(f"{base}/review/login")
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("img", name=f"QR code to add {member.email}")).to_be_visible()
    page.get_by_label("6-digit code").fill(otp_for(member))
    page.get_by_role("button", name="Finish setup and log in").click()
    page.wait_for_url(f"{base}/review/")


def test_claim_approve_confirm_in_the_browser(live_server, browser_page, corpus_account, seeded, reviewer, senior):
    appeal = filing.file_appeal(corpus_account, Actor("account", corpus_account.id, corpus_account.screen_name), {
        "reason": "included_in_error", "statement": "I sell bread; I never ran a campaign.",
        "contact_email": "owner@example.org"})
    appeal_id, datasets = appeal.id, [d.dataset for d in appeal.datasets]
    page = browser_page

    staff_login(page, live_server, reviewer)
    expect(page.get_by_text(f"#{appeal_id}")).to_be_visible()
    page.get_by_role("button", name="Claim next appeal").click()
    page.wait_for_url(f"{live_server}/review/appeals/{appeal_id}")
    expect(page.get_by_text("You hold this appeal.")).to_be_visible()
    page.get_by_label("Approve (changes the published data after a senior confirms)").check()
    page.get_by_label("Remove the account and its rows from every dataset").check()
    page.get_by_label("Statement").fill("The account is a bakery's; nothing links it to the campaign.")
    page.get_by_role("button", name="Record decision").click()
    expect(page.get_by_text("A senior reviewer must confirm before the published data changes.")).to_be_visible()

    other = page.context.browser.new_context().new_page()
    staff_login(other, live_server, senior)
    other.goto(f"{live_server}/review/appeals/{appeal_id}")
    plan = other.get_by_role("region", name="Confirmation: what will change")
    for name in datasets:
        expect(plan.get_by_role("rowheader", name=name)).to_be_visible()
    other.get_by_label("I checked the changes above; they are what this decision must do to the published data.").check()
    other.get_by_role("button", name="Confirm and correct the published data").click()
    expect(other.get_by_text("Confirmed. The correction of the published data is queued.")).to_be_visible()
    other.context.close()
