"""The datasets pages: what is published, each release's files and digests, and its history in counts only."""

from __future__ import annotations

from appeals import runtime
from appeals.services import downloads
from tests.public.conftest import first_dataset


def test_home_page_explains_the_service_to_owners_and_researchers(client, corpus):
    """The home page sends owners to log in and appeal, and everyone else to the datasets."""
    page = client.get("/").get_data(as_text=True)
    assert "appeal" in page.lower()
    assert 'href="/datasets"' in page
    assert 'href="/researchers/apply"' in page


def test_datasets_page_lists_every_dataset_with_counts(client, corpus):
    """Each dataset shows its current release, disclosure date and counts of accounts and tweets."""
    page = client.get("/datasets").get_data(as_text=True)
    for info in runtime.engine().list_datasets():
        current = downloads.current_release(info)
        assert f'href="/datasets/{info.name}"' in page
        assert f"{current.accounts:,}" in page and f"{current.tweets:,}" in page
        assert downloads.disclosed_at(info)[:10] in page


def test_dataset_page_shows_files_with_sizes_and_digests(client, corpus):
    """The dataset page lists the current release's files with size and sha256, and its history."""
    name = first_dataset(corpus)
    info = runtime.engine().get_dataset(name)
    response = client.get(f"/datasets/{name}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for f in info.versions[0].files:
        assert f.path in page and f.sha256 in page and f'title="{f.bytes} bytes"' in page
    assert "First publication" in page


def test_unknown_dataset_and_release_are_404(client, corpus):
    """Names and versions that do not exist are plain 404s."""
    name = first_dataset(corpus)
    assert client.get("/datasets/no_such_dataset").status_code == 404
    assert client.get(f"/datasets/{name}/releases/99").status_code == 404
    assert client.get("/datasets/no_such_dataset/download").status_code == 404


def test_history_after_a_correction_counts_but_never_names(client, corrected):
    """After a correction the new release is current, the old one withdrawn, and nothing names the account."""
    account, result, identifying = corrected
    for name, new_version in result.releases.items():
        page = client.get(f"/datasets/{name}").get_data(as_text=True)
        assert f"version {new_version}" in page
        assert "Withdrawn" in page
        summary = runtime.engine().manifest(name, new_version)["summary"]
        assert f"{summary['accounts_rehashed']} re-hashed" in page
        release = client.get(f"/datasets/{name}/releases/{new_version}")
        assert release.status_code == 200
        for text in (page, release.get_data(as_text=True)):
            for secret in identifying:
                assert secret not in text, f"{secret!r} shown on a public page"


def test_withdrawn_release_answers_410_with_a_pointer(client, corrected):
    """The old release page, its manifest, SHA256SUMS and signatures are 410 Gone, linking to the current one."""
    _account, result, _ = corrected
    name, new_version = next(iter(sorted(result.releases.items())))
    old = new_version - 1
    for suffix in ("", "/manifest.json", "/manifest.json.sig", "/SHA256SUMS", "/SHA256SUMS.sig"):
        response = client.get(f"/datasets/{name}/releases/{old}{suffix}")
        assert response.status_code == 410, suffix
        assert f'href="/datasets/{name}/releases/{new_version}"' in response.get_data(as_text=True)


def test_public_manifest_holds_counts_and_digests_only(client, corrected):
    """The published manifest has whitelisted keys, file digests, and nothing identifying the account."""
    _account, result, identifying = corrected
    for name, version in result.releases.items():
        response = client.get(f"/datasets/{name}/releases/{version}/manifest.json")
        assert response.status_code == 200
        doc = response.get_json()
        assert set(doc) == {"dataset", "version", "parent_version", "created_at", "key_id", "summary", "files"}
        assert doc["version"] == version and doc["parent_version"] == version - 1
        assert all(set(f) == {"path", "variant", "bytes", "rows", "sha256"} for f in doc["files"])
        assert doc["summary"]["accounts_rehashed"] + doc["summary"]["accounts_removed"] <= 1
        text = response.get_data(as_text=True)
        assert "batch-public-test" not in text
        for secret in identifying:
            assert secret not in text
