"""A newcomer in a real browser: find a dataset, download it, see its history; then a correction lands."""

from __future__ import annotations

import hashlib

import pytest
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
    assert page.get_by_role("heading", name="Release history").is_visible()
    page.get_by_role("link", name="Download version 1").click()

    page.get_by_label("Email address").fill("newcomer@example.org")
    page.get_by_role("button", name="Get the download links").click()
    assert page.locator("#e-accept_terms").is_visible()  # the terms were not accepted: no links
    page.get_by_label("I accept the terms of use").check()
    page.get_by_role("button", name="Get the download links").click()
    assert page.get_by_role("heading", name="Your download links").is_visible()

    users_file = f"{name}_users_csv_hashed.csv"
    with page.expect_download() as info:
        page.get_by_role("link", name=users_file).click()
    download = info.value
    expected = runtime.engine().manifest(name)["files"]
    digest = next(f["sha256"] for f in expected if f["path"] == users_file and f["variant"] == "hashed")
    assert hashlib.sha256(open(download.path(), "rb").read()).hexdigest() == digest
    old_link = page.get_by_role("link", name=users_file).get_attribute("href")
    # issue 13: the on-screen link proves no address; the emailed one does, and only its user is told later.
    emailed = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "download_links",
                                                            OutboxMessage.to_addr == "newcomer@example.org"))
    mailed_link = next(line.strip() for line in emailed.body.splitlines() if f"/{users_file}?token=" in line)
    got = page.request.get(live_server + mailed_link[mailed_link.index("/files/"):])
    assert got.status == 200 and hashlib.sha256(got.body()).hexdigest() == digest

    # A correction is published (as the pipeline would) and earlier downloaders are told.
    result = runtime.engine().apply("batch-browser", [(corpus_account.user_id, "rehash")])
    assert notify_downloaders(result.releases) == 1
    notice = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "download_notice"))
    assert notice.to_addr == "newcomer@example.org" and f"version {result.releases[name]}" in notice.body

    page.goto(f"{live_server}/datasets/{name}")
    assert page.get_by_text("Withdrawn").first.is_visible()
    response = page.goto(live_server + old_link)
    assert response.status == 410
    page.get_by_role("link", name=f"Go to version 2 of {name}").click()
    assert page.get_by_role("heading", name=f"{name}, version 2").is_visible()
