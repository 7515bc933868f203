"""Public dataset endpoints of /api/v1: the catalogue, release history, manifests and download links."""

from __future__ import annotations

from flask import jsonify, request

from appeals import runtime
from appeals.api import bp, json_body
from appeals.requests import iso, number_problem
from appeals.i18n import gettext as _
from appeals.limits import download_limited
from appeals.services import downloads
from appeals.services.errors import Invalid


def _release_json(name: str, version, changes: dict) -> dict:
    base = runtime.settings().public_url
    return {
        "version": version.version,
        "status": version.status,
        "created_at": version.created_at,
        "parent_version": version.parent_version,
        "accounts": version.accounts,
        "tweets": version.tweets,
        "changes": changes,
        "url": base + downloads.release_path(name, version.version),
        "manifest_url": f"/api/v1/datasets/{name}/releases/{version.version}/manifest",
    }


def _gone(error: downloads.ReleaseWithdrawn):
    # The common error shape, plus where the current release is.
    body = {
        "code": error.code, "message": error.message, "current_version": error.current_version,
        "current_url": runtime.settings().public_url + error.current_path,
    }
    return jsonify(body), 410


@bp.errorhandler(downloads.ReleaseWithdrawn)
def _withdrawn(error: downloads.ReleaseWithdrawn):
    return _gone(error)


@bp.get("/datasets")
def list_datasets():
    """Every published dataset with its current release and counts."""
    out = []
    for info in downloads.catalogue():
        current = downloads.current_release(info)
        out.append({
            "name": info.name,
            "current_version": info.current_version,
            "disclosed_at": downloads.disclosed_at(info),
            "accounts": current.accounts,
            "tweets": current.tweets,
            "releases_url": f"/api/v1/datasets/{info.name}/releases",
        })
    return jsonify({"datasets": out})


@bp.get("/datasets/<name>/releases")
def list_releases(name: str):
    """A dataset's releases, newest first, each with what it changed as counts only."""
    info, history = downloads.history(name)
    return jsonify({
        "dataset": info.name,
        "current_version": info.current_version,
        "releases": [_release_json(info.name, v, c) for v, c in history],
    })


@bp.get("/datasets/<name>/releases/<int:version>/manifest")
def release_manifest(name: str, version: int):
    """The public manifest of a live release (410 once withdrawn); the signed bytes are on the site."""
    return jsonify(downloads.public_manifest(name, version))


@bp.post("/downloads")
@download_limited
def create_download():
    """Give an email and accept the terms; get signed, expiring links (also sent by email)."""
    data = json_body()
    problems = {}
    version, problem = number_problem(data.get("version"), text=False)
    if problem:
        problems["version"] = problem
    name = data.get("dataset")
    if not isinstance(name, str) or not name:
        problems["dataset"] = _("Required.")
    variant = data.get("variant", "hashed")
    if variant != "hashed":
        # Unhashed files are for logged-in licensed researchers, on the website only.
        problems["variant"] = _("The API serves the hashed variant only.")
    if problems:
        raise Invalid(_("Please correct the request."), fields=problems)
    grant = downloads.request_links(
        None, data.get("email"), name, version, variant, data.get("accept_terms"), ip=request.remote_addr,
    )
    return jsonify({
        "dataset": grant.dataset,
        "version": grant.version,
        "variant": grant.variant,
        "expires_at": iso(grant.expires_at),
        # In production the links go only to the address given: proving it is using them.
        "emailed_only": grant.emailed,
        "links": [
            {"path": link.path, "url": link.url, "expires_at": iso(link.expires_at),
             "bytes": link.bytes, "sha256": link.sha256}
            for link in grant.links
        ],
    }), 201
