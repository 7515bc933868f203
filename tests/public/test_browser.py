"""A newcomer in a real browser: find a dataset, download it, see its history; then a correction lands."""

from __future__ import annotations

import hashlib
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from appeals import db, runtime
from appeals.models import OutboxMessage
from appeals.services.downloads import notify_downloaders
from tests.public.conftest import first_dataset


@pytest.mark.browser
def test_find_download_and_follow_a_correction(live_server, browser_page, corpus, corpus_account):
    page = browser_page
    name = first_dataset(corpus)
    page.goto(live_server + "/")
    page.get_by_role("link", name="Browse 3 datasets").click()
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", name="Release history")).to_be_visible()
    page.get_by_role("link", name="Download version 1").click()

    page.get_by_label("Email address").fill("newcomer@example.org")
    page.get_by_role("button", name="Get the download links").click()
    expect(page.locator("#e-accept_terms")).to_be_visible()  # the terms were not accepted: no links
    page.get_by_label("I accept the terms of use").check()
    page.get_by_role("button", name="Get the download links").click()
    expect(page.get_by_role("heading", name="Your download links")).to_be_visible()

    users_file = f"{name}_users_csv_hashed.csv"
    with page.expect_download() as info:
        page.get_by_role("link", name=users_file).click()
    download = info.value
    expected = runtime.engine().manifest(name)["files"]
    digest = next(f["sha256"] for f in expected if f["path"] == users_file and f["variant"] == "hashed")
    assert hashlib.sha256(open(download.path(), "rb").read()).hexdigest() == digest
    old_link = page.get_by_role("link", name=users_file).get_attribute("href")
    # Links on a page prove no address (issue 13): notices go only to downloads through the link
    # that was emailed. The newcomer uses that one too, as from their mailbox.
    mail = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "download_links"))
    emailed = re.search(r"(/files/\S+/" + re.escape(users_file) + r"\?token=[\w.\-]+)", mail.body).group(1)
    assert emailed != old_link
    assert page.request.get(live_server + emailed).body() == open(download.path(), "rb").read()

    # A correction is published (as the pipeline would) and earlier downloaders are told.
    result = runtime.engine().apply("batch-browser", [(corpus_account.user_id, "rehash")])
    assert notify_downloaders(result.releases) == 1
    notice = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "download_notice"))
    assert notice.to_addr == "newcomer@example.org" and f"version {result.releases[name]}" in notice.body

    page.goto(f"{live_server}/datasets/{name}")
    expect(page.get_by_text("Withdrawn").first).to_be_visible()
    response = page.goto(live_server + old_link)
    assert response.status == 410
    page.get_by_role("link", name=f"Go to version 2 of {name}").click()
    expect(page.get_by_role("heading", name=f"{name}, version 2")).to_be_visible()
