"""Right to left in Chromium: the owner's filing and status pages in Arabic and Persian, phone and desktop."""

from __future__ import annotations

import pytest

from appeals import db
from tests.browser.conftest import assert_page_ok
from tests.conftest import PASSWORD
from tests.owner.conftest import file_for, move

pytestmark = pytest.mark.browser

ARABIC_STATEMENT = "هذا حسابي الشخصي، أكتب فيه عن مخبزي في حلب منذ عام 2015 ولم أشارك في أي حملة."


def _log_in(page, base: str, screen_name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#f-username", screen_name)
    page.fill("#f-password", PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_url(f"{base}/me")


@pytest.mark.parametrize("language", ["ar", "fa"])
def test_filing_and_status_pages_right_to_left(live_server, new_page, viewport, corpus_account, language):
    corpus_account.language = language
    db.session.commit()
    page = new_page()
    _log_in(page, live_server, corpus_account.screen_name)

    page.goto(f"{live_server}/appeals/new")
    assert page.evaluate("[document.documentElement.lang, document.documentElement.dir]") == [language, "rtl"]
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    assert_page_ok(page)

    appeal = file_for(corpus_account, statement=ARABIC_STATEMENT)
    move(appeal.id, "in_review", "info_requested")
    page.goto(f"{live_server}/appeals/{appeal.id}")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    # The timeline runs down the right-hand side: its line is on the right of the list.
    line = page.evaluate("""() => { const s = getComputedStyle(document.querySelector('.timeline'));
        return [s.borderRightWidth, s.borderLeftWidth]; }""")
    assert line == ["3px", "0px"]
    assert_page_ok(page)


def test_arabic_statement_and_latin_screen_name_are_isolated(live_server, new_page, corpus_account):
    page = new_page()
    _log_in(page, live_server, corpus_account.screen_name)
    appeal = file_for(corpus_account, statement=ARABIC_STATEMENT)
    for language, page_direction in (("en", "ltr"), ("ar", "rtl")):
        corpus_account.language = language
        db.session.commit()
        page.goto(f"{live_server}/appeals/{appeal.id}")
        assert page.evaluate("document.documentElement.dir") == page_direction
        statement = page.locator("#statement")
        assert statement.get_attribute("dir") == "auto" and ARABIC_STATEMENT in statement.inner_text()
        # dir=auto gives the Arabic statement its own right-to-left paragraph even on an English page.
        assert statement.evaluate("el => getComputedStyle(el).direction") == "rtl"
        name = page.locator("bdi#screen-name")
        assert name.inner_text() == f"@{corpus_account.screen_name}"
        # <bdi> keeps the Latin name's own direction inside an Arabic page.
        assert name.evaluate("el => getComputedStyle(el).unicodeBidi") == "isolate"
        assert name.evaluate("el => el.matches(':dir(ltr)')")
