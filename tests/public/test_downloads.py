"""The download gate: an email and the terms, signed expiring links, logged and range-able streams, 410s."""

from __future__ import annotations

import hashlib
import re
import types

import itsdangerous.timed
import pytest
from sqlalchemy import func, select

from appeals import db, runtime
from appeals.models import DownloadLog, DownloadRequest, OutboxMessage
from tests.public.conftest import first_dataset, post_form

LINK_RE = re.compile(r'href="(/files/[^"]+)"')


def request_links(client, name: str, email: str = "reader@example.org", **extra):
    """Fill in the download form like a visitor; returns the response."""
    data = {"email": email, "accept_terms": "yes", "variant": "hashed", **extra}
    return post_form(client, f"/datasets/{name}/download", data)


def links_on(response) -> list[str]:
    return [link.replace("&amp;", "&") for link in LINK_RE.findall(response.get_data(as_text=True))]


def hashed_files(name: str, version: int | None = None) -> dict:
    manifest = runtime.engine().manifest(name, version)
    return {f["path"]: f for f in manifest["files"] if f["variant"] == "hashed"}


def counts() -> tuple[int, int, int]:
    return tuple(db.session.scalar(select(func.count()).select_from(m)) for m in (DownloadRequest, DownloadLog,
                                                                                 OutboxMessage))


@pytest.mark.parametrize("data, field", [
    ({"email": "", "accept_terms": "yes"}, "email"),
    ({"email": "not-an-address", "accept_terms": "yes"}, "email"),
    ({"email": "reader@example.org"}, "accept_terms"),
    ({"email": "reader@example.org", "accept_terms": "yes", "variant": "raw"}, "variant"),
])
def test_no_link_without_an_email_and_accepted_terms(client, corpus, data, field):
    """A missing email or unaccepted terms gets a clear error, no link, no email and no record."""
    name = first_dataset(corpus)
    response = post_form(client, f"/datasets/{name}/download", {"variant": "hashed", **data})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'id="e-{field}"' in page
    assert "/files/" not in page
    assert counts() == (0, 0, 0)


def test_form_needs_its_csrf_token(client, corpus):
    """A forged cross-site form post is refused."""
    response = client.post(f"/datasets/{first_dataset(corpus)}/download",
                           data={"email": "reader@example.org", "accept_terms": "yes", "variant": "hashed"})
    assert response.status_code == 400
    assert counts() == (0, 0, 0)


def test_links_are_emailed_shown_in_test_mode_and_stream_the_published_bytes(client, corpus, smtp_server,
                                                                              deliver_mail):
    """The visitor gets signed links by email (and on screen here); each file streams exactly and is logged."""
    name = first_dataset(corpus)
    response = request_links(client, name)
    assert response.status_code == 200
    links = links_on(response)
    files = hashed_files(name)
    assert sorted(link.split("/")[-1].split("?")[0] for link in links) == sorted(files)

    deliver_mail()
    assert len(smtp_server) == 1
    mail = smtp_server[0]
    assert mail["To"] == "reader@example.org"
    body = mail.get_payload(decode=True).decode()
    for link in links:
        # The same files; the emailed token differs (it marks the address as proven when used).
        assert "http://testserver" + link.split("?token=")[0] + "?token=" in body

    for link in links:
        download = client.get(link)
        assert download.status_code == 200
        filename = link.split("/")[-1].split("?")[0]
        assert hashlib.sha256(download.data).hexdigest() == files[filename]["sha256"]
        assert filename in download.headers["Content-Disposition"]
    logged = db.session.scalars(select(DownloadLog)).all()
    assert sorted(row.path for row in logged) == sorted(files)
    assert {(r.email, r.dataset, r.version, r.variant) for r in logged} == {("reader@example.org", name, 1, "hashed")}
    assert all(r.created_at is not None for r in logged)


def test_links_are_not_shown_on_screen_outside_demo_and_test(client, corpus):
    """In production the links go by email only; the page says to check the inbox."""
    from dataclasses import replace

    runtime.bootstrap(replace(runtime.settings(), mode="production"))
    response = request_links(client, first_dataset(corpus))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "/files/" not in page and "check your inbox" in page
    body = db.session.scalar(select(OutboxMessage.body))
    assert "/files/" in body


def test_range_requests_resume_a_download(client, corpus):
    """Files honour HTTP Range; a resumed part is not logged as a second download."""
    name = first_dataset(corpus)
    link = links_on(request_links(client, name))[0]
    whole = client.get(link).data
    part = client.get(link, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206
    assert part.data == whole[10:100]
    assert part.headers["Content-Range"] == f"bytes 10-99/{len(whole)}"
    tail = client.get(link, headers={"Range": f"bytes={len(whole) - 5}-"})
    assert tail.status_code == 206 and tail.data == whole[-5:]
    assert client.get(link, headers={"Range": f"bytes={len(whole) + 10}-"}).status_code == 416
    assert db.session.scalar(select(func.count()).select_from(DownloadLog)) == 1


def test_a_file_url_needs_a_valid_link(client, corpus):
    """No token: 403 with a pointer to the form. A tampered or foreign token: 404. Nothing is logged."""
    name = first_dataset(corpus)
    link = links_on(request_links(client, name))[0]
    path, token = link.split("?token=")
    no_token = client.get(path)
    assert no_token.status_code == 403
    assert "email" in no_token.get_data(as_text=True)
    assert client.get(f"{path}?token={token[:-2]}xx").status_code == 404
    other = first_dataset(corpus[1:])
    other_file = next(iter(hashed_files(other)))
    assert client.get(f"/files/{other}/1/hashed/{other_file}?token={token}").status_code == 404
    assert client.get(f"/files/{name}/2/hashed/{path.split('/')[-1]}?token={token}").status_code == 404
    assert db.session.scalar(select(func.count()).select_from(DownloadLog)) == 0


def test_an_expired_link_is_refused(client, corpus, monkeypatch):
    """A link older than download_link_hours no longer works, and says so."""
    name = first_dataset(corpus)
    hours = runtime.settings().download_link_hours
    real_time = itsdangerous.timed.time.time
    monkeypatch.setattr(itsdangerous.timed, "time", types.SimpleNamespace(time=lambda: real_time() - hours * 3600 - 60))
    link = links_on(request_links(client, name))[0]
    monkeypatch.undo()
    response = client.get(link)
    assert response.status_code == 403
    assert "expired" in response.get_data(as_text=True)


def test_old_links_answer_410_after_a_correction(client, corpus, corpus_account):
    """A link to a version a correction withdrew answers 410 Gone, pointing at the new version."""
    name = first_dataset(corpus)
    link = links_on(request_links(client, name))[0]
    result = runtime.engine().apply("batch-old-links", [(corpus_account.user_id, "rehash")])
    assert result.releases[name] == 2
    response = client.get(link)
    assert response.status_code == 410
    assert f'href="/datasets/{name}/releases/2"' in response.get_data(as_text=True)
    no_token = client.get(link.split("?")[0])
    assert no_token.status_code == 410
    form = client.get(f"/datasets/{name}/download?version=1")
    assert form.status_code == 410
