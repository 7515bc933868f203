"""issue 13: one attack per finding of the break-in; each failed against the code before the fix."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace

import pyotp
import pytest
import requests
from sqlalchemy import func, select

from appeals import create_app, db, runtime
from appeals.models import ApiToken, AuditEntry, DownloadLog, Staff
from appeals.services import auth, researchers, review, staff as staff_service
from appeals.services.audit import Actor
from tests.conftest import PASSWORD, csrf_from
from tests.reviewer.conftest import bearer, login, make_appeal, otp_for, token_for


def web_login(client, username, password=PASSWORD, **kwargs):
    return client.post("/login", data={"csrf_token": csrf_from(client, "/login"), "username": username,
                                       "password": password}, **kwargs)


def limit_of(settings) -> int:
    return int(settings.login_rate_limit.split(" ")[0])


# 1. Per-account login limit bypass --------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["@@@@@@@@NewsGop51", "NEWSGOP51", "jo@example.org", " @newsgop51 ",
                                      "ＮｅｗｓＧｏｐ５１"])
def test_no_spelling_of_a_name_escapes_its_accounts_limit(client, jo, settings, spelling):
    """With the limit reached for NewsGop51, another spelling of the same account is refused too."""
    for _ in range(limit_of(settings)):
        assert web_login(client, "NewsGop51", "wrong password!").status_code == 401
    assert web_login(client, spelling).status_code == 429


def test_token_endpoint_shares_the_accounts_limit(client, jo, settings):
    for _ in range(limit_of(settings)):
        assert client.post("/api/v1/tokens", json={"username": "newsgop51", "password": "wrong password!"}
                           ).status_code == 401
    response = client.post("/api/v1/tokens", json={"username": "@@NewsGop51", "password": PASSWORD})
    assert response.status_code == 429 and response.get_json()["code"] == "too_many_requests"


def test_identity_normalisation_is_one_rule():
    assert {auth.normalise_identity(s) for s in ("@@NewsGop51", "newsgop51", "ＮｅｗｓＧｏｐ５１", " @NEWSGOP51")} == {
        "newsgop51"}
    assert auth.normalise_identity(123) == "" and auth.normalise_identity("a\x00b") == ""


# 2. Concurrent TOTP replay ------------------------------------------------------------------------

def test_parallel_token_requests_with_one_code_get_one_token(live_server, make_staff):
    """Three parallel token requests with the same code: exactly one 201."""
    member = make_staff("replay@review.example", "senior")
    code = otp_for(member)
    barrier = threading.Barrier(3)
    statuses = []

    def attempt():
        barrier.wait()
        statuses.append(requests.post(f"{live_server}/api/v1/tokens", timeout=30, json={
            "username": member.email, "password": PASSWORD, "otp": code}).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 401, 401]


def test_a_code_is_accepted_once(make_staff):
    member = make_staff("once@review.example", "reviewer")
    code = otp_for(member)
    assert auth.check_totp(member, code) is True
    db.session.commit()
    assert auth.check_totp(member, code) is False
    db.session.rollback()


# 4. Logout ends the session; no header games; idle timeout -----------------------------------------

def test_a_cookie_copied_before_logout_is_dead_after_it(app, jo):
    browser = app.test_client()
    assert web_login(browser, "NewsGop51").status_code == 302
    copied = browser.get_cookie("session").value
    browser.post("/logout", data={"csrf_token": csrf_from(browser, "/me")})
    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/me", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 302


def test_an_idle_session_ends(app, jo):
    browser = app.test_client()
    web_login(browser, "NewsGop51")
    assert browser.get("/me").status_code == 200
    with browser.session_transaction() as sess:
        stamp = sess["_stamp"]
        sess["_stamp"] = {**stamp, "seen_at": stamp["seen_at"] - 31 * 60}
    assert browser.get("/me").status_code == 302


def test_session_validity_rules(jo):
    stamp = auth.session_stamp(jo, now=1000.0)
    idle, max_age = auth.timedelta(minutes=30), auth.timedelta(hours=12)
    assert auth.session_is_valid(jo, stamp, idle, max_age, now=1000.0 + 29 * 60)
    assert not auth.session_is_valid(jo, stamp, idle, max_age, now=1000.0 + 31 * 60)
    assert not auth.session_is_valid(jo, {**stamp, "seen_at": 1000.0 + 12 * 3600}, idle, max_age,
                                     now=1000.0 + 12 * 3600 + 1)
    assert not auth.session_is_valid(jo, {**stamp, "gen": stamp["gen"] + 1}, idle, max_age, now=1000.0)
    assert not auth.session_is_valid(jo, {"gen": "x"}, idle, max_age)


# 5. Security headers ----------------------------------------------------------------------------

def test_security_headers_on_every_page(client):
    for path in ("/", "/review/login", "/login", "/api/v1/datasets"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp.split(
            "script-src")[1].split(";")[0]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "Strict-Transport-Security" not in headers  # http: no HSTS


def test_hsts_in_production_over_https(settings):
    app = create_app(replace(settings, mode="production", public_url="https://appeals.example"))
    assert app.test_client().get("/").headers["Strict-Transport-Security"].startswith("max-age=")


def test_no_template_holds_inline_script():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for template in list(root.glob("appeals/**/*.html")) + list(root.glob("reviewer_ui/**/*.html")):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template
        assert not re.search(r"\son[a-z]+\s*=", text), template
        assert "javascript:" not in text, template


# 6 and 14. Production refuses weak or published secrets, and a missing signing key -------------------

@pytest.fixture
def prod_env(tmp_path):
    import secrets

    key = tmp_path / "signing.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----")
    return {"APPEALS_HOME": str(tmp_path), "APPEALS_SECRET_KEY": secrets.token_urlsafe(48),
            "APPEALS_HASH_KEY": secrets.token_urlsafe(48), "APPEALS_SIGNING_KEY": str(key)}


def test_production_with_good_secrets_starts(prod_env):
    from config import Settings

    assert Settings.from_env(prod_env).mode == "production"


@pytest.mark.parametrize("name", ["APPEALS_SECRET_KEY", "APPEALS_HASH_KEY"])
@pytest.mark.parametrize("value", ["x", "s" * 64, "abababababababababababababababab",
                                   "appeals-demo-secret-key-not-for-production",
                                   "appeals-demo-hash-key-not-for-production"])
def test_production_refuses_weak_or_published_secrets(prod_env, name, value):
    from config import ConfigError, Settings

    with pytest.raises(ConfigError, match=name) as refused:
        Settings.from_env({**prod_env, name: value})
    assert 'python -c "import secrets; print(secrets.token_urlsafe(48))"' in str(refused.value)


def test_production_refuses_a_secret_written_in_the_repository(prod_env, tmp_path):
    """Any value found in the source tree is public, however random it looks."""
    from config import ConfigError, Settings

    published = "Ahh7Qe0lWq3sC9vXbN2mT5rZkY8uJdP1gF6hLwE4oRxI"  # written here, so refused
    with pytest.raises(ConfigError, match="written in the repository"):
        Settings.from_env({**prod_env, "APPEALS_SECRET_KEY": published})


def test_production_refuses_to_start_without_a_signing_key(prod_env, tmp_path):
    from config import ConfigError, Settings

    with pytest.raises(ConfigError, match="APPEALS_SIGNING_KEY"):
        Settings.from_env({**prod_env, "APPEALS_SIGNING_KEY": str(tmp_path / "absent.pem")})


# 7. The email gate holds on the API in production -------------------------------------------------

def test_api_gives_no_links_in_production(client, corpus, smtp_server, deliver_mail):
    runtime.bootstrap(replace(runtime.settings(), mode="production"))
    response = client.post("/api/v1/downloads", json={"email": "victim@example.org", "dataset": corpus[0].name,
                                                      "accept_terms": True})
    assert response.status_code == 201
    body = response.get_json()
    assert body["links"] == [] and body["emailed_only"] is True
    assert "token=" not in response.get_data(as_text=True)
    deliver_mail()  # the request wrote the outbox row; the worker sends it
    assert [m["To"] for m in smtp_server] == ["victim@example.org"]


# 8. A suffix range covering the whole file is a logged download ----------------------------------

def test_whole_file_by_suffix_range_is_logged(client, corpus):
    from tests.public.test_downloads import links_on, request_links

    link = links_on(request_links(client, corpus[0].name))[0]
    size = int(client.head(link).headers["Content-Length"])
    whole = client.get(link, headers={"Range": f"bytes=-{size}"})
    assert whole.status_code in (200, 206) and len(whole.data) == size
    assert db.session.scalar(select(func.count()).select_from(DownloadLog)) == 1


# 9. Odd input never gives a 500; the API answers JSON for every status --------------------------------

@pytest.mark.parametrize("query", ["page=²", "per_page=²", "page=١٢", "per_page=９", "page=" + "9" * 5000])
def test_unicode_digits_in_queue_parameters_are_4xx(client, make_staff, query):
    token = token_for(client, make_staff("q@review.example", "reviewer"))
    for path in ("/api/v1/queue", "/api/v1/audit"):
        response = client.get(f"{path}?{query}", headers=bearer(token))
        assert response.status_code == 422 and response.is_json


def test_unicode_version_and_template_ids_on_pages_are_4xx(client, make_staff, make_account):
    reviewer = make_staff("r@review.example", "reviewer")
    appeal = make_appeal(make_account("300001", "someone"))
    login(client, reviewer)
    token = csrf_from(client, f"/review/appeals/{appeal.id}")
    response = client.post(f"/review/appeals/{appeal.id}/claim", data={"csrf_token": token, "version": "²"})
    assert response.status_code == 422
    assert client.get(f"/review/appeals/{appeal.id}?template=²&target=statement").status_code == 200
    admin = make_staff("a@review.example", "admin")
    other = client.application.test_client()
    login(other, admin)
    saved = other.post("/review/reference", data={"csrf_token": csrf_from(other, "/review/reference"),
                                                   "kind": "template", "template_id": "²", "name": "x",
                                                   "body": "hello", "active": "1"})
    assert saved.status_code in (303, 422)


def test_full_width_totp_code_is_not_a_500(client, make_staff):
    member = make_staff("fw@review.example", "reviewer")
    code = otp_for(member)
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in code)
    response = client.post("/api/v1/tokens", json={"username": member.email, "password": PASSWORD, "otp": full_width})
    assert response.status_code == 201  # NFKC: the same digits


@pytest.mark.parametrize("body", [
    {"username": 123, "password": "x"}, {"username": "a", "password": ["x"]}, {"username": "a", "password": "b",
                                                                              "otp": {"x": 1}},
])
def test_wrong_types_are_422(client, body):
    response = client.post("/api/v1/tokens", json=body)
    assert response.status_code == 422 and response.get_json()["code"]


def test_deeply_nested_json_is_422(client):
    deep = "[" * 100_000 + "]" * 100_000
    response = client.post("/api/v1/tokens", data=deep, content_type="application/json")
    assert response.status_code == 422 and response.get_json()["code"] == "invalid_json"


def test_api_answers_json_for_405_413_404(client):
    for response, status in ((client.get("/api/v1/tokens"), 405), (client.put("/api/v1/datasets"), 405),
                             (client.get("/api/v1/nothing-here"), 404),
                             (client.post("/api/v1/tokens", data=b"x" * (3 * 1024 * 1024),
                                          content_type="application/json"), 413)):
        assert response.status_code == status and response.is_json
        assert set(response.get_json()) >= {"code", "message"}


def test_api_answers_json_for_500(settings):
    app = create_app(settings)
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/api/v1/__boom")
    def boom():
        raise RuntimeError("boom")

    response = app.test_client().get("/api/v1/__boom")
    assert response.status_code == 500 and response.get_json()["code"] == "internal_server_error"


@pytest.mark.parametrize("big", [2**31, 2**63, 2**70])
def test_an_id_past_what_the_database_holds_is_404_or_422(client, make_staff, make_account, big):
    """Schemathesis on PostgreSQL: 2**31 in a path id was a 500 ("integer out of range"); the same in a
    form's template id."""
    reviewer = make_staff("big@review.example", "reviewer")
    token = token_for(client, reviewer)
    for path in (f"/api/v1/appeals/{big}", f"/api/v1/review/appeals/{big}"):
        response = client.get(path, headers=bearer(token))
        assert response.status_code == 404 and response.is_json
    response = client.post(f"/api/v1/appeals/{big}/claim", headers=bearer(token), json={})
    assert response.status_code == 404 and response.is_json
    appeal = make_appeal(make_account("300002", "someone"))
    page = client.application.test_client()
    login(page, reviewer)
    assert page.get(f"/review/appeals/{big}").status_code == 404
    response = page.get(f"/review/appeals/{appeal.id}?template={big}&target=statement")
    assert response.status_code == 200
    admin = client.application.test_client()
    login(admin, make_staff("bigadmin@review.example", "admin"))
    saved = admin.post("/review/reference", data={"csrf_token": csrf_from(admin, "/review/reference"),
                                                  "kind": "template", "template_id": str(big), "name": "x",
                                                  "body": "hello", "active": "1"})
    assert saved.status_code == 422


# 10. The researcher application does the same work for known and unknown emails -------------------

def test_researcher_application_hashes_for_known_and_new_emails(settings, monkeypatch):
    calls = []
    real = researchers.hash_password
    monkeypatch.setattr(researchers, "hash_password", lambda p: calls.append(p) or real(p))
    args = ("Ada", "Uni", "ada@uni.example", "Study", "a long password!", True)
    assert researchers.apply(*args) is not None
    assert researchers.apply(*args) is None  # known: answered by email only
    assert len(calls) == 2  # the slow part ran both times: no timing oracle


# 11. Escalation survives a request for information ---------------------------------------------------

def test_escalated_appeal_stays_with_seniors_after_the_owners_reply(make_staff, make_account):
    from appeals.services import filing

    reviewer, senior = make_staff("rv@review.example", "reviewer"), make_staff("sn@review.example", "senior")
    owner = make_account("400001", "escalated_owner")
    appeal = make_appeal(owner)
    rv = Actor("staff", reviewer.id, reviewer.email)
    review.claim(reviewer, appeal.id, rv)
    review.decide(reviewer, appeal.id, rv, "escalate", statement="Needs a senior.")
    sn = Actor("staff", senior.id, senior.email)
    review.claim(senior, appeal.id, sn)
    review.decide(senior, appeal.id, sn, "request_info", statement="Which dates?")
    filing.reply(owner, Actor("account", owner.id, owner.screen_name), appeal.id, "These dates.")
    from appeals.services.errors import Forbidden

    with pytest.raises(Forbidden):
        review.claim(reviewer, appeal.id, rv)
    assert review.claim_next(reviewer, rv) is None
    assert review.claim(senior, appeal.id, sn).assigned_to_id == senior.id


# 12. Bursts cannot overrun the limits; a stranger cannot lock an owner out ------------------------

def test_a_burst_of_failed_logins_is_held_to_the_limit(live_server, jo, settings):
    limit = limit_of(settings)
    barrier = threading.Barrier(20)
    statuses = []

    def attempt():
        barrier.wait()
        statuses.append(requests.post(f"{live_server}/api/v1/tokens", timeout=30, json={
            "username": "NewsGop51", "password": "wrong password!"}).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(401) <= limit and statuses.count(429) >= 20 - limit


def test_a_stranger_cannot_lock_an_owner_out(client, jo, settings):
    for _ in range(limit_of(settings) + 3):
        web_login(client, "NewsGop51", "wrong password!", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    owner = web_login(client, "NewsGop51", environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert owner.status_code == 302


# 13. Revocation: TOTP reset, disable, and an explicit revoke end tokens and sessions ----------------

def test_totp_reset_and_disable_end_tokens_and_sessions(app, client, make_staff):
    admin, member = make_staff("boss@review.example", "admin"), make_staff("m@review.example", "reviewer")
    token = token_for(client, member)
    browser = app.test_client()
    login(browser, member)
    assert browser.get("/review/").status_code == 200
    boss = Actor("staff", admin.id, admin.email)
    staff_service.reset_totp(admin, boss, member.id)
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert browser.get("/review/").status_code == 302
    member = db.session.get(Staff, member.id, populate_existing=True)
    login(browser, member)
    token = token_for(client, member)
    staff_service.set_active(admin, boss, member.id, False)
    staff_service.set_active(admin, boss, member.id, True)
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert browser.get("/review/").status_code == 302


def test_a_token_can_be_revoked(client, jo):
    token = client.post("/api/v1/tokens", json={"username": "NewsGop51", "password": PASSWORD}).get_json()["token"]
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    assert client.delete("/api/v1/tokens", headers=bearer(token)).status_code == 204
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert db.session.scalar(select(ApiToken.revoked)) is True


# 15. No-store on private pages; proxies trusted only as configured -------------------------------

def test_private_pages_are_not_cached(client, jo):
    web_login(client, "NewsGop51")
    assert client.get("/me").headers["Cache-Control"] == "no-store"
    assert client.get("/review/login").headers["Cache-Control"] == "no-store"


def test_forwarded_for_is_ignored_without_trusted_proxies(client, jo, settings):
    """With APPEALS_TRUSTED_PROXIES=0 a client cannot pick its address to dodge the per-address limit."""
    for i in range(limit_of(settings)):
        web_login(client, f"nobody{i}", "wrong password!", headers={"X-Forwarded-For": f"10.0.0.{i}"})
    assert web_login(client, "NewsGop51", headers={"X-Forwarded-For": "10.9.9.9"}).status_code == 429


def test_one_trusted_proxy_gives_the_client_address(settings, jo):
    app = create_app(replace(settings, trusted_proxies=1))
    client = app.test_client()
    for i in range(limit_of(settings)):
        web_login(client, f"nobody{i}", "wrong password!", headers={"X-Forwarded-For": "192.0.2.1"})
    # Behind the proxy, another client is another address: not blocked by the first one's failures.
    assert web_login(client, "NewsGop51", headers={"X-Forwarded-For": "192.0.2.2"}).status_code == 302


# issue 14: login limits degrade safely when Redis is down --------------------------------------------

def test_logins_answer_json_503_when_redis_is_down(settings, jo):
    app = create_app(replace(settings, redis_url="redis://127.0.0.1:1/13"))
    client = app.test_client()
    response = client.post("/api/v1/tokens", json={"username": "NewsGop51", "password": PASSWORD})
    assert response.status_code == 503 and response.get_json()["code"] == "service_unavailable"
    assert client.get("/api/v1/datasets").is_json
    page = web_login(client, "NewsGop51")
    assert page.status_code == 503
