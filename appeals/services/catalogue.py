"""The public catalogue: datasets, releases, what each changed (counts only), signed manifests.

Nothing here ever names an account: releases are described by counts only.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from appeals import runtime
from appeals.i18n import gettext as _
from appeals.services import signing
from appeals.services.errors import NotFound, ServiceError

# The manifest keys and file keys published; anything else the engine adds stays private.
_MANIFEST_KEYS = ("dataset", "version", "parent_version", "created_at", "key_id", "summary", "files")
_FILE_KEYS = ("variant", "path", "bytes", "rows", "sha256")
_SUMMARY_KEYS = ("accounts_removed", "accounts_rehashed", "rows_removed", "rows_rewritten", "files_changed")


class ReleaseWithdrawn(ServiceError):
    """The release was withdrawn (superseded by a correction): 410 Gone, pointing at the current one."""

    status = 410
    code = "gone"

    def __init__(self, dataset: str, version: int, current_version: int):
        super().__init__(
            _("Version %(version)s of %(dataset)s was withdrawn and replaced by version %(current)s. "
              "Please download the current version instead.", version=version, dataset=dataset, current=current_version)
        )
        self.dataset = dataset
        self.version = version
        self.current_version = current_version
        self.current_path = release_path(dataset, current_version)


# --- the catalogue ---------------------------------------------------------------------------


def engine_and_errors():
    from workers.engine import errors as engine_errors

    return runtime.engine(), engine_errors


def release_path(dataset: str, version: int) -> str:
    """Site-relative URL of a release page (the one place its shape is spelled outside the views)."""
    return f"/datasets/{quote(dataset, safe='')}/releases/{int(version)}"


def catalogue() -> list:
    """Every published dataset (DatasetInfo), by name."""
    engine, _errors = engine_and_errors()
    return sorted(engine.list_datasets(), key=lambda d: d.name)


def dataset(name: str):
    """One dataset (DatasetInfo), or NotFound."""
    engine, errors = engine_and_errors()
    try:
        return engine.get_dataset(name)
    except errors.UnknownDataset:
        raise NotFound(_("No such dataset.")) from None


def disclosed_at(info) -> str:
    """The disclosure date of a dataset: when its first release was published."""
    first = min(info.versions, key=lambda v: v.version)
    return first.created_at


def current_release(info):
    """The current VersionInfo of a dataset."""
    return next(v for v in info.versions if v.version == info.current_version)


def release(name: str, version: int | None = None):
    """(DatasetInfo, VersionInfo) of a live release; NotFound, or ReleaseWithdrawn (410)."""
    info = dataset(name)
    wanted = info.current_version if version is None else version
    found = next((v for v in info.versions if v.version == wanted), None)
    if found is None:
        raise NotFound(_("No such release."))
    if found.status == "withdrawn":
        raise ReleaseWithdrawn(info.name, found.version, info.current_version)
    return info, found


def changes(info, version) -> dict:
    """What a release changed compared with its parent, as counts only (never who)."""
    summary = version.summary or {}
    parent = next((v for v in info.versions if v.version == version.parent_version), None)
    tweets_removed = max(0, parent.tweets - version.tweets) if parent is not None else 0
    return {
        "accounts_removed": int(summary.get("accounts_removed", 0) or 0),
        "accounts_rehashed": int(summary.get("accounts_rehashed", 0) or 0),
        "tweets_removed": tweets_removed,
        "files_changed": int(summary.get("files_changed", 0) or 0),
    }


def history(name: str) -> tuple:
    """(DatasetInfo, [(VersionInfo, changes)] newest first) of a dataset."""
    info = dataset(name)
    versions = sorted(info.versions, key=lambda v: v.version, reverse=True)
    return info, [(v, changes(info, v)) for v in versions]


# --- manifests and signatures ---------------------------------------------------------------


def public_manifest(name: str, version: int) -> dict:
    """The manifest of a live release as published: counts and file digests, nothing identifying."""
    engine, _errors = engine_and_errors()
    release(name, version)  # NotFound / ReleaseWithdrawn first
    raw = engine.manifest(name, version)
    doc = {key: raw.get(key) for key in _MANIFEST_KEYS if key != "files" and key != "summary"}
    doc["summary"] = {key: int((raw.get("summary") or {}).get(key, 0) or 0) for key in _SUMMARY_KEYS}
    doc["files"] = [{key: f.get(key) for key in _FILE_KEYS} for f in raw.get("files", [])]
    return doc


def manifest_bytes(name: str, version: int) -> bytes:
    """The exact bytes served as manifest.json (stable, so a signature over them stays valid)."""
    return (json.dumps(public_manifest(name, version), sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode(
        "utf-8"
    )


def sha256sums_bytes(name: str, version: int) -> bytes:
    """A SHA256SUMS file for a live release, in the format `sha256sum -c` reads."""
    files = public_manifest(name, version)["files"]
    return "".join(f"{f['sha256']}  {f['path']}\n" for f in sorted(files, key=lambda f: f["path"])).encode("utf-8")


def signed(document: str, name: str, version: int) -> tuple[bytes, str]:
    """(bytes, base64 Ed25519 signature) of `manifest.json` or `SHA256SUMS` of a live release."""
    if document == "manifest.json":
        data = manifest_bytes(name, version)
    elif document == "SHA256SUMS":
        data = sha256sums_bytes(name, version)
    else:
        raise NotFound(_("No such document."))
    return data, signing.sign(data)


