"""Ed25519 signatures over published manifests and SHA256SUMS, with the key from configuration.

The private key is APPEALS_SIGNING_KEY: the PEM text itself (nothing on disk, so every web process
of a deployment signs with the same key without a shared filesystem), or the path of a PEM file
(`settings.signing_key_path`). In demo, test and development modes a missing file is generated; in
production signing refuses to start without one, so a release is never signed
by a throwaway key nobody can verify later.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appeals import runtime
from config import ConfigError

_keys: dict[str, Ed25519PrivateKey] = {}
_lock = threading.Lock()


class SigningKeyMissing(ConfigError):
    """No signing key is configured where one is required."""


def private_key() -> Ed25519PrivateKey:
    """The configured Ed25519 private key (loaded once per path; generated in relaxed modes)."""
    settings = runtime.settings()
    if settings.signing_key_pem:
        ident = "pem:" + hashlib.sha256(settings.signing_key_pem.encode()).hexdigest()
        with _lock:
            if ident not in _keys:
                _keys[ident] = _parse(settings.signing_key_pem.encode(), "APPEALS_SIGNING_KEY (PEM text)")
            return _keys[ident]
    path = Path(settings.signing_key_path)
    with _lock:
        key = _keys.get(str(path))
        if key is None:
            if not path.exists():
                if not settings.is_relaxed:
                    raise SigningKeyMissing(
                        f"APPEALS_SIGNING_KEY must name an Ed25519 private key (PEM); {path} does not exist. "
                        "Create one with: openssl genpkey -algorithm ed25519 -out signing_key.pem"
                    )
                _generate(path)
            key = _load(path)
            _keys[str(path)] = key
        return key


def _generate(path: Path) -> None:
    # O_EXCL + link: two processes starting together never overwrite each other's key.
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process won the race; use its key
    finally:
        os.unlink(tmp)


def _load(path: Path) -> Ed25519PrivateKey:
    return _parse(path.read_bytes(), f"APPEALS_SIGNING_KEY {path}")


def _parse(pem: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{where} is not an Ed25519 key")
    return key


def sign(data: bytes) -> str:
    """The base64 Ed25519 signature of exactly `data`."""
    return base64.b64encode(private_key().sign(data)).decode("ascii")


def public_key_pem() -> bytes:
    """The public half of the signing key, as a PEM (SubjectPublicKeyInfo) document."""
    return private_key().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint() -> str:
    """A short SHA-256 fingerprint of the raw public key, for people to compare by eye."""
    raw = private_key().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    digest = hashlib.sha256(raw).hexdigest()
    return "SHA256:" + ":".join(digest[i:i + 4] for i in range(0, 32, 4))


def verify(data: bytes, signature_b64: str | bytes, public_pem: bytes) -> bool:
    """True when `signature_b64` is a valid signature of `data` under the PEM public key."""
    key = serialization.load_pem_public_key(public_pem)
    if not isinstance(key, Ed25519PublicKey):
        return False
    try:
        key.verify(base64.b64decode(signature_b64.strip(), validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True
