"""The public dataset endpoints of /api/v1, and their place in the OpenAPI document."""

from __future__ import annotations

from sqlalchemy import func, select

from appeals import db, runtime
from appeals.models import DownloadLog, DownloadRequest
from tests.conftest import csrf_from
from tests.public.conftest import first_dataset


def test_datasets_and_releases(client, corpus):
    """The catalogue and each dataset's releases, without a token."""
    listing = client.get("/api/v1/datasets")
    assert listing.status_code == 200
    names = [d["name"] for d in listing.get_json()["datasets"]]
    assert names == sorted(d.name for d in corpus)
    name = names[0]
    releases = client.get(f"/api/v1/datasets/{name}/releases").get_json()
    assert releases["current_version"] == 1
    assert releases["releases"][0]["changes"] == {"accounts_removed": 0, "accounts_rehashed": 0,
                                                  "tweets_removed": 0, "files_changed": 0}
    missing = client.get("/api/v1/datasets/nope/releases")
    assert missing.status_code == 404 and missing.get_json()["code"] == "not_found"


def test_manifest_files_hold_path_variant_bytes_rows_sha256(client, corpus):
    name = first_dataset(corpus)
    manifest = client.get(f"/api/v1/datasets/{name}/releases/1/manifest").get_json()
    assert manifest["files"]
    for f in manifest["files"]:
        assert set(f) == {"path", "variant", "bytes", "rows", "sha256"}
        assert runtime.engine().file_path(name, 1, f["variant"], f["path"]).stat().st_size == f["bytes"]


def test_withdrawn_manifest_is_410_with_the_current_version(client, corrected):
    _account, result, _ = corrected
    name, version = sorted(result.releases.items())[0]
    response = client.get(f"/api/v1/datasets/{name}/releases/{version - 1}/manifest")
    assert response.status_code == 410
    body = response.get_json()
    assert body["code"] == "gone" and body["current_version"] == version
    assert body["current_url"].endswith(f"/datasets/{name}/releases/{version}")
    releases = client.get(f"/api/v1/datasets/{name}/releases").get_json()["releases"]
    assert [(r["version"], r["status"]) for r in releases] == [(version, "current"), (version - 1, "withdrawn")]


def test_post_downloads_returns_working_links(client, corpus):
    name = first_dataset(corpus)
    response = client.post("/api/v1/downloads", json={
        "email": "api@example.org", "dataset": name, "variant": "hashed", "accept_terms": True})
    assert response.status_code == 201
    links = response.get_json()["links"]
    assert links and all(set(link) >= {"path", "url", "expires_at"} for link in links)
    assert all("unhashed" not in link["path"] for link in links)
    first = client.get(links[0]["url"])
    assert first.status_code == 200
    assert db.session.scalar(select(DownloadLog.email)) == "api@example.org"


def test_post_downloads_refuses_without_terms_or_email_or_for_unhashed(client, corpus):
    """Each refusal is a 422 naming the field, and records nothing."""
    name = first_dataset(corpus)
    cases = [
        ({"email": "api@example.org", "dataset": name}, "accept_terms"),
        ({"email": "api@example.org", "dataset": name, "accept_terms": "yes"}, "accept_terms"),
        ({"dataset": name, "accept_terms": True}, "email"),
        ({"email": "api@example.org", "dataset": name, "accept_terms": True, "variant": "unhashed"}, "variant"),
        ({"email": "api@example.org", "accept_terms": True}, "dataset"),
        ({"email": "api@example.org", "dataset": name, "version": "1", "accept_terms": True}, "version"),
    ]
    for body, field in cases:
        response = client.post("/api/v1/downloads", json=body)
        assert response.status_code == 422, body
        assert field in response.get_json()["fields"], body
    assert client.post("/api/v1/downloads", data="not json").status_code == 422
    assert client.post("/api/v1/downloads", json={"email": "a@example.org", "dataset": "nope",
                                                  "accept_terms": True}).status_code == 404
    assert db.session.scalar(select(func.count()).select_from(DownloadRequest)) == 0


def test_openapi_declares_the_public_dataset_endpoints(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    for path, method in [("/datasets", "get"), ("/datasets/{name}/releases", "get"),
                         ("/datasets/{name}/releases/{version}/manifest", "get"), ("/downloads", "post")]:
        assert doc["paths"][path][method]["security"] == [], path
    files = doc["paths"]["/datasets/{name}/releases/{version}/manifest"]["get"]["responses"]["200"]
    item = files["content"]["application/json"]["schema"]["properties"]["files"]["items"]
    assert set(item["required"]) == {"path", "variant", "bytes", "rows", "sha256"}


def test_the_download_gate_allows_ten_requests_an_hour_per_email_on_the_api_and_the_page(client, corpus):
    """The limit is per e-mail address named, whatever its spelling; another address is not held back."""
    name = first_dataset(corpus)
    api = [client.post("/api/v1/downloads", json={"email": "Flood@Example.org", "dataset": name}).status_code
           for _ in range(11)]
    assert api == [422] * 10 + [429]
    assert client.post("/api/v1/downloads", json={"email": "flood@example.org"}).status_code == 429
    assert client.post("/api/v1/downloads", json={"email": "other@example.org"}).status_code == 422
    token = csrf_from(client, f"/datasets/{name}/download")
    page = [client.post(f"/datasets/{name}/download", data={"email": "flood@example.org", "csrf_token": token})
            .status_code for _ in range(11)]
    assert page[-1] == 429 and 429 not in page[:10], page
