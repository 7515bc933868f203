"""Downloads from the object store: gate, log, then a presigned redirect; Range at the store; 410 first."""

from __future__ import annotations

import hashlib
import re
import urllib.parse
import urllib.request

from sqlalchemy import func, select

from appeals import db, runtime
from appeals.models import DownloadLog
from tests.conftest import users_of
from tests.public.conftest import post_form

LINK_RE = re.compile(r'href="(/files/[^"]+)"')


def _links(client, name: str) -> list[str]:
    response = post_form(client, f"/datasets/{name}/download",
                         {"email": "reader@example.org", "accept_terms": "yes", "variant": "hashed"})
    assert response.status_code == 200
    return [link.replace("&amp;", "&") for link in LINK_RE.findall(response.get_data(as_text=True))]


def _fetch(url: str, headers: dict | None = None):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
        return r.status, r.read(), dict(r.headers)


def test_download_redirects_to_a_short_lived_presigned_url_and_range_works_there(client, s3_corpus):
    name = s3_corpus.name
    manifest = runtime.engine().manifest(name)
    files = {f["path"]: f for f in manifest["files"] if f["variant"] == "hashed"}
    link = next(l for l in _links(client, name) if "tweets" in l)
    response = client.get(link)
    assert response.status_code == 302
    url = response.headers["Location"]
    query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    assert int(query["X-Amz-Expires"][0]) <= 900  # at most 15 minutes
    assert db.session.scalar(select(func.count()).select_from(DownloadLog)) == 1  # logged before the redirect
    path = urllib.parse.unquote(link.split("/")[-1].split("?")[0])
    status, body, headers = _fetch(url)
    assert status == 200 and hashlib.sha256(body).hexdigest() == files[path]["sha256"]
    assert path in headers.get("Content-Disposition", "")
    status, part, _ = _fetch(url, {"Range": "bytes=10-99"})
    assert status == 206 and part == body[10:100]
    # The same object has no stable address: without the signature the private bucket refuses it.
    bare = url.split("?")[0]
    try:
        _fetch(bare)
        raise AssertionError("an unsigned GET of a release file succeeded")
    except urllib.error.HTTPError as exc:
        assert exc.code == 403


def test_withdrawn_version_answers_410_before_any_redirect(client, s3_corpus):
    name = s3_corpus.name
    links = _links(client, name)
    row = sorted(users_of(s3_corpus), key=lambda r: r["userid"])[0]
    result = runtime.engine().apply("b-s3-410", [(row["userid"], "remove")])
    assert result.releases == {name: 2}
    before = db.session.scalar(select(func.count()).select_from(DownloadLog))
    response = client.get(links[0])
    assert response.status_code == 410
    assert "Location" not in response.headers
    assert db.session.scalar(select(func.count()).select_from(DownloadLog)) == before  # nothing logged


def test_unhashed_files_get_no_redirect_without_a_grant(client, s3_corpus):
    name = s3_corpus.name
    path = next(f["path"] for f in runtime.engine().manifest(name)["files"] if f["variant"] == "unhashed")
    response = client.get(f"/files/{name}/1/unhashed/{path}?token=anything")
    assert response.status_code == 404 and "Location" not in response.headers
