"""Which language a page, an API message and an email use: stored choice, then header, then English."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from appeals import db, i18n
from appeals.models import Account, Appeal, MessageTemplate, OutboxMessage
from appeals.services import reference
from appeals.services.audit import Actor
from tests.conftest import PASSWORD, csrf_from
from tests.owner.conftest import GOOD_APPEAL, file_for, move, staff_session, web_login


def translated(code: str, message: str, **variables) -> str:
    with i18n.use_locale(code):
        return i18n.gettext(message, **variables)


def html_lang(page: str) -> tuple[str, str]:
    match = re.search(r'<html lang="([^"]+)" dir="([^"]+)">', page)
    assert match, "no <html lang dir>"
    return match.group(1), match.group(2)


@pytest.fixture(autouse=True)
def _end_session():
    yield
    db.session.remove()


def test_every_language_is_named_in_itself_in_the_switcher(client):
    page = client.get("/login").get_data(as_text=True)
    for code, (native, _direction) in i18n.LANGUAGES.items():
        assert re.search(rf'<option value="{code}" lang="{code.replace("_", "-")}"[^>]*>{native}</option>', page)
    assert '<label for="language-select">' in page and 'action="/language"' in page


@pytest.mark.parametrize("header, expected, direction", [
    ("fa-IR,fa;q=0.9,en;q=0.5", "fa", "rtl"),
    ("ar", "ar", "rtl"),
    ("zh-CN,zh;q=0.9", "zh-Hans", "ltr"),
    ("ja,de;q=0.8", "en", "ltr"),  # nothing shipped asked for: English
    ("tr;q=0.2,es-MX;q=0.8", "es", "ltr"),  # by quality, not by order
])
def test_the_header_chooses_when_nothing_is_stored(client, header, expected, direction):
    page = client.get("/login", headers={"Accept-Language": header}).get_data(as_text=True)
    assert html_lang(page) == (expected, direction)


def test_no_header_means_english(client):
    page = client.get("/login").get_data(as_text=True)
    assert html_lang(page) == ("en", "ltr") and "Log in to your platform account" in page


def test_persian_page_is_persian(client):
    page = client.get("/login", headers={"Accept-Language": "fa"}).get_data(as_text=True)
    assert translated("fa", "Log in to your platform account") in page
    assert "Log in to your platform account" not in page


def test_a_visitors_choice_beats_the_header_and_survives_login(client, corpus_account):
    token = csrf_from(client, "/login")
    response = client.post("/language", data={"csrf_token": token, "language": "ru", "next": "/login"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/login")
    page = client.get("/login", headers={"Accept-Language": "fa"}).get_data(as_text=True)
    assert html_lang(page)[0] == "ru"
    web_login(client, corpus_account.screen_name)
    # Chosen before logging in: the account now remembers it.
    assert db.session.get(Account, corpus_account.id).language == "ru"


def test_the_stored_choice_beats_the_header_on_every_new_login(app, corpus_account):
    first = app.test_client()
    web_login(first, corpus_account.screen_name)
    token = csrf_from(first, "/me")
    first.post("/language", data={"csrf_token": token, "language": "tr", "next": "/me"})
    db.session.expire_all()
    assert db.session.get(Account, corpus_account.id).language == "tr"

    later = app.test_client()  # another browser, asking for Arabic
    later.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ar"
    assert html_lang(later.get("/login").get_data(as_text=True))[0] == "ar"
    web_login(later, corpus_account.screen_name)
    page = later.get("/me").get_data(as_text=True)
    assert html_lang(page) == ("tr", "ltr")
    assert translated("tr", "Where does your account appear?") in page


def test_an_unknown_language_changes_nothing(client):
    token = csrf_from(client, "/login")
    client.post("/language", data={"csrf_token": token, "language": "xx", "next": "/login"})
    assert html_lang(client.get("/login").get_data(as_text=True))[0] == "en"


def test_the_switcher_needs_the_csrf_token(client):
    assert client.post("/language", data={"language": "fa"}).status_code == 400


def test_the_switcher_never_redirects_off_site(client):
    token = csrf_from(client, "/login")
    response = client.post("/language", data={"csrf_token": token, "language": "fa", "next": "//evil.example/"})
    assert response.headers["Location"] == "/"


def test_reviewer_pages_stay_english(app, client, make_staff):
    staff = make_staff("rev@example.org")
    staff_session(app, client, staff)
    page = client.get("/review/", headers={"Accept-Language": "fa"}, follow_redirects=True).get_data(as_text=True)
    assert html_lang(page) == ("en", "ltr") and 'id="language-select"' not in page


def test_api_message_follows_the_header_and_the_code_stays(client):
    response = client.post("/api/v1/tokens", json={"username": "nobody", "password": "wrong password"},
                           headers={"Accept-Language": "ru"})
    body = response.get_json()
    assert response.status_code == 401 and body["code"] == "invalid_credentials"
    assert body["message"] == translated("ru", "Those credentials are not valid.")
    anonymous = client.get("/api/v1/me", headers={"Accept-Language": "zh-CN"}).get_json()
    assert anonymous["code"] == "unauthorized"
    assert anonymous["message"] == translated("zh_Hans", "A valid bearer token is required (POST /api/v1/tokens).")


def test_api_message_follows_the_stored_choice(client, corpus_account):
    corpus_account.language = "es"
    db.session.commit()
    token = client.post("/api/v1/tokens", json={"username": corpus_account.screen_name, "password": PASSWORD}
                        ).get_json()["token"]
    body = client.post("/api/v1/appeals", json={"reason": "nonsense"}, headers={
        "Authorization": f"Bearer {token}", "Accept-Language": "fa"}).get_json()
    assert body["code"] == "invalid"
    assert body["fields"]["reason"] == translated(
        "es", "Choose why you are appealing: included in error, compromised, or another reason.")


def _owner_mail(appeal_id: int) -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "status")
                                   .order_by(OutboxMessage.id)))


def test_email_follows_the_stored_choice_not_the_browser(client, corpus_account):
    corpus_account.language = "tr"
    db.session.commit()
    web_login(client, corpus_account.screen_name)
    token = csrf_from(client, "/appeals/new")
    client.post("/appeals/new", data={"csrf_token": token, **GOOD_APPEAL}, headers={"Accept-Language": "es"})
    appeal = db.session.scalar(select(Appeal).where(Appeal.account_id == corpus_account.id))
    mail = _owner_mail(appeal.id)[-1]
    status = translated("tr", "Filed")
    assert mail.subject == translated("tr", "Your appeal #%(id)s: %(status)s", id=appeal.id, status=status)
    assert translated("tr", "This message was sent because you filed an appeal.") in mail.body


def test_email_without_a_stored_choice_uses_the_language_filed_in_even_from_a_worker(client, corpus_account):
    web_login(client, corpus_account.screen_name)
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fa"
    token = csrf_from(client, "/appeals/new")
    client.post("/appeals/new", data={"csrf_token": token, **GOOD_APPEAL})
    appeal = db.session.scalar(select(Appeal).where(Appeal.account_id == corpus_account.id))
    assert appeal.language == "fa"
    # Later changes happen outside any request (a worker, a reviewer in English): still Persian.
    move(appeal.id, "in_review")
    mail = _owner_mail(appeal.id)[-1]
    assert mail.subject == translated("fa", "Your appeal #%(id)s: %(status)s", id=appeal.id,
                                      status=translated("fa", "In review"))


def test_dates_and_numbers_follow_the_locale():
    from datetime import datetime

    moment = datetime(2019, 3, 27, 14, 5)
    with i18n.use_locale("fa"):
        assert i18n.format_number(12345) == "۱۲,۳۴۵" and "۲۰۱۹" in i18n.when(moment)
    with i18n.use_locale("ru"):
        assert i18n.format_number(12345) == "12\xa0345" and "марта" in i18n.when(moment)
    with i18n.use_locale("en"):
        assert i18n.when(moment) == "27 March 2019, 14:05 UTC"


# --- reviewers' message templates -------------------------------------------------------------


def _review_page(app, client, make_staff, appeal, template, target="message"):
    from appeals.services import review

    staff = make_staff("rev@example.org")
    review.claim(staff, appeal.id, Actor("staff", staff.id, staff.email))
    staff_session(app, client, staff)
    return client.get(f"/review/appeals/{appeal.id}?template={template.id}&target={target}").get_data(as_text=True)


def test_a_template_goes_out_in_the_owners_language_with_placeholders_filled(app, client, corpus_account,
                                                                             make_staff):
    reference.seed_defaults()
    corpus_account.language = "fa"
    db.session.commit()
    appeal = file_for(corpus_account)
    template = db.session.scalar(select(MessageTemplate).where(MessageTemplate.name == "Request: compromise dates"))
    page = _review_page(app, client, make_staff, appeal, template)
    persian = reference.DEFAULT_TEMPLATE_TRANSLATIONS[template.name]["fa"]
    expected = persian.replace("{screen_name}", corpus_account.screen_name)
    assert expected.split("{question}")[0].strip() in page.replace("&#39;", "'")
    assert "Persian (fa), فارسی" in page and 'id="template-note"' in page
    assert "No Persian" not in page


def test_a_missing_translation_falls_back_to_english_with_a_note(app, client, corpus_account, make_staff):
    corpus_account.language = "ar"
    db.session.commit()
    appeal = file_for(corpus_account)
    template = MessageTemplate(name="Only English", body="Hello @{screen_name}, about appeal {appeal_id}.",
                               active=True)
    db.session.add(template)
    db.session.commit()
    page = _review_page(app, client, make_staff, appeal, template)
    assert f"Hello @{corpus_account.screen_name}, about appeal {appeal.id}." in page
    assert "No Arabic (ar), العربية translation of this template." in page
    choice = reference.choose(db.session.get(MessageTemplate, template.id), db.session.get(Appeal, appeal.id))
    assert choice.missing and choice.language == "en" and choice.wanted == "ar"


def test_free_text_is_sent_as_written(app, client, corpus_account, make_staff):
    from appeals.services import review

    corpus_account.language = "ru"
    db.session.commit()
    appeal = file_for(corpus_account)
    staff = make_staff("rev2@example.org")
    actor = Actor("staff", staff.id, staff.email)
    review.claim(staff, appeal.id, actor)
    review.send_message(staff, appeal.id, actor, "Please send the screenshot, in any language.")
    from appeals.models import Message

    bodies = list(db.session.scalars(select(Message.body).where(Message.appeal_id == appeal.id)))
    assert bodies == ["Please send the screenshot, in any language."]


def test_a_translation_must_keep_the_english_placeholders(make_staff):
    from appeals.services.errors import Invalid

    admin = make_staff("admin@example.org", role="admin")
    actor = Actor("staff", admin.id, admin.email)
    with pytest.raises(Invalid) as refused:
        reference.save_template(admin, actor, "T", "Dear @{screen_name}", True,
                                translations={"es": "Estimado/a"})
    assert "body_es" in refused.value.fields
    saved = reference.save_template(admin, actor, "T", "Dear @{screen_name}", True,
                                    translations={"es": "Estimado/a @{screen_name}"})
    assert reference.body_in(saved, "es") == "Estimado/a @{screen_name}"
    assert "es" not in reference.missing_languages(saved) and "fa" in reference.missing_languages(saved)
