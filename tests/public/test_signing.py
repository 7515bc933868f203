"""Signed manifests: Ed25519 over the exact bytes served, checkable with the published key and OpenSSL."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace

import pytest

from appeals import runtime
from appeals.services import signing
from tests.public.conftest import first_dataset


@pytest.mark.parametrize("document", ["manifest.json", "SHA256SUMS"])
def test_signature_verifies_with_the_public_key(client, corpus, document):
    """The served document's signature verifies with /signing-key.pem, and fails once a byte changes."""
    name = first_dataset(corpus)
    data = client.get(f"/datasets/{name}/releases/1/{document}").data
    sig = client.get(f"/datasets/{name}/releases/1/{document}.sig").data
    key = client.get("/signing-key.pem").data
    assert key.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert signing.verify(data, sig, key)
    assert not signing.verify(data.replace(b"1", b"2", 1), sig, key)


def test_sha256sums_match_the_files_and_the_manifest(client, corpus):
    """SHA256SUMS lists every file of the release with the manifest's digest, in sha256sum's format."""
    name = first_dataset(corpus)
    manifest = client.get(f"/datasets/{name}/releases/1/manifest.json").get_json()
    sums = client.get(f"/datasets/{name}/releases/1/SHA256SUMS").get_data(as_text=True)
    expected = [f"{f['sha256']}  {f['path']}" for f in sorted(manifest["files"], key=lambda f: f["path"])]
    assert sums.splitlines() == expected


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_openssl_recipe_on_the_verify_page_works(client, corpus, tmp_path):
    """The documented `base64 -d` + `openssl pkeyutl -verify` recipe verifies, and rejects a forgery."""
    name = first_dataset(corpus)
    assert "openssl pkeyutl -verify -pubin -inkey signing-key.pem -rawin" in client.get("/verify").get_data(as_text=True)
    (tmp_path / "SHA256SUMS").write_bytes(client.get(f"/datasets/{name}/releases/1/SHA256SUMS").data)
    (tmp_path / "signing-key.pem").write_bytes(client.get("/signing-key.pem").data)
    (tmp_path / "SHA256SUMS.sig").write_bytes(client.get(f"/datasets/{name}/releases/1/SHA256SUMS.sig").data)
    with open(tmp_path / "SHA256SUMS.sig.bin", "wb") as raw:
        subprocess.run(["base64", "-d", "SHA256SUMS.sig"], cwd=tmp_path, stdout=raw, check=True)
    command = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "signing-key.pem", "-rawin",
               "-in", "SHA256SUMS", "-sigfile", "SHA256SUMS.sig.bin"]
    ok = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0 and "Signature Verified Successfully" in ok.stdout
    (tmp_path / "SHA256SUMS").write_bytes(b"0" * 64 + b"  forged.csv\n")
    assert subprocess.run(command, cwd=tmp_path, capture_output=True).returncode != 0


def test_key_is_generated_once_in_test_mode_and_kept(settings):
    """A missing key is created (private to its owner) and then reused: signatures stay checkable."""
    path = settings.signing_key_path
    assert not path.exists()
    first = signing.public_key_pem()
    assert path.exists() and (os.stat(path).st_mode & 0o777) == 0o600
    signing._keys.clear()  # as a new process would
    assert signing.public_key_pem() == first


def test_production_refuses_to_sign_without_a_configured_key(settings, tmp_path):
    """Outside demo and test modes a missing key is an error, never a silently generated key."""
    runtime.bootstrap(replace(settings, mode="production", signing_key_path=tmp_path / "absent.pem"))
    with pytest.raises(signing.SigningKeyMissing, match="APPEALS_SIGNING_KEY"):
        signing.sign(b"data")
    assert not (tmp_path / "absent.pem").exists()


def test_a_configured_openssl_key_is_used(settings, tmp_path):
    """An operator's key made with `openssl genpkey -algorithm ed25519` is the one that signs."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key = tmp_path / "operator.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    public = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout"], check=True, capture_output=True).stdout
    runtime.bootstrap(replace(settings, mode="production", signing_key_path=key))
    assert signing.public_key_pem() == public
    assert signing.verify(b"data", signing.sign(b"data"), public)
