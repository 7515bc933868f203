"""Telling earlier downloaders: one email per person when a correction supersedes their version."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from appeals import db, runtime
from appeals.models import DownloadNotice
from appeals.services.downloads import notify_downloaders
from tests.public.conftest import first_dataset, login_researcher
from tests.public.test_downloads import links_on, request_links
from tests.public.test_unhashed import unhashed_links


FILE_LINK = re.compile(r"http://testserver(/files/\S+)")


def emailed_links(smtp_server, response, email: str) -> list[str]:
    """The links of the latest email to `email` (from the outbox): only they prove the address (issue 13)."""
    from appeals.models import OutboxMessage

    assert response.status_code == 200
    body = db.session.scalars(select(OutboxMessage.body).where(OutboxMessage.to_addr == email)
                              .order_by(OutboxMessage.id.desc())).first()
    return FILE_LINK.findall(body)


def download_all(client, links) -> None:
    for link in links:
        assert client.get(link).status_code == 200


def test_downloaders_get_one_notice_that_names_no_account(app, corpus, corpus_account, make_researcher, smtp_server,
                                                         deliver_mail):
    """Hashed and unhashed downloaders of the old version each get one email with the new version's link."""
    from workers.engine.hashing import pseudonym

    name = first_dataset(corpus)
    other = corpus[1].name
    public, licensed, elsewhere = app.test_client(), app.test_client(), app.test_client()
    download_all(public, emailed_links(smtp_server, request_links(public, name, email="reader@example.org"), "reader@example.org")[:2])
    download_all(public, emailed_links(smtp_server, request_links(public, name, email="reader@example.org"), "reader@example.org")[:1])  # twice: one notice
    researcher = make_researcher("ada@uni.example")
    login_researcher(licensed, researcher.email)
    download_all(licensed, unhashed_links(licensed, name)[:1])
    download_all(elsewhere, emailed_links(smtp_server, request_links(elsewhere, other, email="other@example.org"), "other@example.org")[:1])
    assert request_links(app.test_client(), name, email="never-clicked@example.org").status_code == 200
    deliver_mail()  # the links emails
    smtp_server.clear()

    result = runtime.engine().apply("batch-notices", [(corpus_account.user_id, "rehash")])
    releases = {k: v for k, v in result.releases.items() if k == name}
    assert notify_downloaders(releases) == 2
    deliver_mail()

    by_recipient = {m["To"]: m for m in smtp_server}
    assert set(by_recipient) == {"reader@example.org", "ada@uni.example"}
    key = runtime.settings().hash_key
    forbidden = {corpus_account.user_id, corpus_account.screen_name, pseudonym(key, corpus_account.user_id, 0),
                 pseudonym(key, corpus_account.user_id, 1), "batch-notices"}
    for message in smtp_server:
        body = message.get_payload(decode=True).decode()
        text = message["Subject"] + "\n" + body
        assert name in message["Subject"] and f"version {releases[name]}" in text
        assert f"http://testserver/datasets/{name}/releases/{releases[name]}" in body
        assert "replace" in text.lower()
        for secret in forbidden:
            assert secret not in text

    # Idempotent: a retry of the pipeline tells nobody twice.
    smtp_server.clear()
    assert notify_downloaders(releases) == 0
    deliver_mail()
    assert smtp_server == []
    notices = db.session.scalars(select(DownloadNotice)).all()
    assert {(n.email, n.dataset, n.old_version, n.new_version) for n in notices} == {
        ("reader@example.org", name, 1, 2), ("ada@uni.example", name, 1, 2)}


def test_a_second_correction_tells_only_who_has_not_been_told(client, corpus, corpus_account, smtp_server,
                                                              deliver_mail):
    """Someone told about version 1 is not told again about it; a download of version 2 is told about 3."""
    name = first_dataset(corpus)
    download_all(client, emailed_links(smtp_server, request_links(client, name, email="early@example.org"), "early@example.org")[:1])
    engine = runtime.engine()
    first = engine.apply("batch-one", [(corpus_account.user_id, "rehash")])
    assert notify_downloaders({name: first.releases[name]}) == 1
    deliver_mail()
    download_all(client, emailed_links(smtp_server, request_links(client, name, email="later@example.org"), "later@example.org")[:1])
    second = engine.apply("batch-two", [(corpus_account.user_id, "remove")])
    deliver_mail()  # the links emails
    smtp_server.clear()
    assert notify_downloaders({name: second.releases[name]}) == 1
    deliver_mail()
    assert [m["To"] for m in smtp_server] == ["later@example.org"]
    assert db.session.scalar(select(func.count()).select_from(DownloadNotice)) == 2


def test_links_shown_on_screen_prove_nothing_and_get_no_notice(client, corpus, corpus_account, smtp_server):
    """issue 13: a download through the on-screen link (demo/test) is logged but not proven: no notice."""
    name = first_dataset(corpus)
    download_all(client, links_on(request_links(client, name, email="someone-else@example.org"))[:1])
    result = runtime.engine().apply("batch-unproven", [(corpus_account.user_id, "rehash")])
    smtp_server.clear()
    assert notify_downloaders({name: result.releases[name]}) == 0
    assert smtp_server == []
