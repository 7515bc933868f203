"""Unhashed files: reachable only by a logged-in researcher with a current grant and a link of their own."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import select

from appeals import db, runtime
from appeals.models import DownloadLog, Researcher
from tests.public.conftest import first_dataset, login_as, login_researcher
from tests.public.test_downloads import links_on, request_links


def unhashed_files(name: str) -> dict:
    return {f["path"]: f for f in runtime.engine().manifest(name)["files"] if f["variant"] == "unhashed"}


def unhashed_links(client, name: str) -> list[str]:
    """Ask for unhashed links as the researcher logged in on `client`."""
    response = request_links(client, name, email="ignored@example.org", variant="unhashed")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return links_on(response)


def first_bytes(name: str, filename: str) -> bytes:
    return runtime.engine().file_path(name, 1, "unhashed", filename).read_bytes()[:200]


def test_an_approved_researcher_downloads_unhashed_files_and_each_is_logged(client, corpus, make_researcher):
    """Links go to the grant's address, are bound to the researcher, stream the file and are logged."""
    researcher = make_researcher()
    login_researcher(client, researcher.email)
    name = first_dataset(corpus)
    links = unhashed_links(client, name)
    files = unhashed_files(name)
    assert sorted(link.split("/")[-1].split("?")[0] for link in links) == sorted(files)
    for link in links:
        response = client.get(link)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "private, no-store"
    rows = db.session.scalars(select(DownloadLog)).all()
    assert len(rows) == len(files)
    assert {(r.email, r.variant, r.researcher_id) for r in rows} == {(researcher.email, "unhashed", researcher.id)}


@pytest.mark.parametrize("who", ["anonymous", "owner", "pending", "rejected", "revoked", "expired", "other"])
def test_nobody_else_reaches_an_unhashed_file_by_any_url(app, corpus, make_researcher, make_account, who):
    """Real names, guessed names, other variants, blob ids and path traversal: all 404, never the bytes."""
    name = first_dataset(corpus)
    owner_client, intruder = app.test_client(), app.test_client()
    holder = make_researcher("holder@uni.example")
    login_researcher(owner_client, holder.email)
    real_link = unhashed_links(owner_client, name)[0]
    real_path, token = real_link.split("?token=")
    filename = real_path.split("/")[-1]
    secret = first_bytes(name, filename)
    blob = unhashed_files(name)[filename]["sha256"]
    hashed_link = links_on(request_links(intruder, name))[0]
    hashed_token = hashed_link.split("?token=")[1]

    if who == "owner":
        login_as(intruder, make_account("12345", "someowner", email="owner@example.org"))
        assert "Log out" in intruder.get("/datasets").get_data(as_text=True)  # logged in, as an owner
    elif who != "anonymous":
        statuses = {"pending": ("pending", None), "rejected": ("rejected", None), "revoked": ("revoked", None),
                    "expired": ("approved", timedelta(days=-1)), "other": ("approved", None)}
        status, expires_in = statuses[who]
        make_researcher(f"{who}@uni.example", status=status, expires_in=expires_in)
        login_researcher(intruder, f"{who}@uni.example")

    guesses = [
        real_link,
        real_path,
        f"{real_path}?token={hashed_token}",
        f"/files/{name}/1/unhashed/{filename.replace('unhashed', 'hashed')}?token={token}",
        f"/files/{name}/1/hashed/{filename}?token={hashed_token}",
        f"/files/{name}/1/hashed/{filename}?token={token}",
        f"/files/{name}/1/unhashed/{blob}?token={token}",
        f"/files/{name}/1/unhashed/{name}_users_csv_unhashed_2.csv?token={token}",
        f"/files/{name}/1/hashed/..%2Funhashed%2F{filename}?token={hashed_token}",
        f"/files/{name}/1/hashed/{quote('../unhashed/' + filename, safe='')}?token={hashed_token}",
        f"/files/{name}/1/hashed/%2e%2e/unhashed/{filename}?token={hashed_token}",
        f"/files/{name}/1/hashed/../unhashed/{filename}?token={hashed_token}",
        f"/files/{name}/1/UNHASHED/{filename}?token={token}",
        f"/files/{name}/1/unhashed/..%2F..%2F..%2FHEAD.json?token={token}",
        f"/files/{name}/1/hashed/..%2F..%2F..%2Fblobs%2F{blob[:2]}%2F{blob[2:4]}%2F{blob}?token={hashed_token}",
        f"/files/..%2F{name}/1/unhashed/{filename}?token={token}",
        f"/datasets/{name}/releases/1/{filename}",
        f"/static/../../{filename}",
    ]
    for url in guesses:
        if who == "other" and url == real_link:
            continue  # checked below: an approved researcher holding someone else's link
        response = intruder.get(url, follow_redirects=True)
        assert response.status_code == 404, (who, url, response.status_code)
        assert secret not in response.data, (who, url)
    if who == "other":
        response = intruder.get(real_link)
        assert response.status_code == 404
        assert secret not in response.data
    assert db.session.scalar(select(DownloadLog).where(DownloadLog.variant == "unhashed")) is None


def test_only_a_current_researcher_can_ask_for_unhashed_links(client, corpus, make_researcher):
    """Anonymous visitors are sent to log in; a pending researcher is refused; nothing is recorded."""
    name = first_dataset(corpus)
    anonymous = request_links(client, name, variant="unhashed")
    assert anonymous.status_code == 302 and "/researchers/login" in anonymous.headers["Location"]
    make_researcher("pending@uni.example", status="pending")
    login_researcher(client, "pending@uni.example")
    refused = request_links(client, name, variant="unhashed")
    assert refused.status_code == 403
    assert "/files/" not in refused.get_data(as_text=True)


def test_a_revoked_grant_stops_links_already_issued(client, corpus, make_researcher):
    """Revocation works at once: the researcher's earlier links stop answering."""
    researcher = make_researcher()
    login_researcher(client, researcher.email)
    link = unhashed_links(client, first_dataset(corpus))[0]
    assert client.get(link).status_code == 200
    row = db.session.get(Researcher, researcher.id)
    row.status = "revoked"
    db.session.commit()
    assert client.get(link).status_code == 404
