"""Public dataset endpoints of /api/v1: the catalogue, release history, manifests and download links."""

from __future__ import annotations

from flask import jsonify, request

from appeals import runtime
from appeals.api import bp, json_body
from appeals.extensions import limiter
from appeals.requests import iso, number_problem
from appeals.i18n import gettext as _
from appeals.limits import download_email_key
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
@limiter.limit("30 per hour")
@limiter.limit("10 per hour", key_func=download_email_key)
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


# --- OpenAPI ---------------------------------------------------------------------------------

_ERR = {"$ref": "#/components/responses/Error"}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {"name": "version", "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807}}
_COUNTS = {
    "type": "object",
    "properties": {k: {"type": "integer"} for k in ("accounts_removed", "accounts_rehashed", "tweets_removed",
                                                    "files_changed")},
}
_FILE = {
    "type": "object",
    "required": ["path", "variant", "bytes", "rows", "sha256"],
    "properties": {
        "path": {"type": "string"},
        "variant": {"type": "string", "enum": ["hashed", "unhashed"]},
        "bytes": {"type": "integer"},
        "rows": {"type": "integer"},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
}
_GONE = {
    "description": "The release was withdrawn by a correction; points at the current one",
    "content": {"application/json": {"schema": {
        "type": "object",
        "required": ["code", "message", "current_version", "current_url"],
        "properties": {"code": {"type": "string", "const": "gone"}, "message": {"type": "string"},
                       "current_version": {"type": "integer"}, "current_url": {"type": "string"}},
    }}},
}


def _ok(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


OPENAPI_PATHS = {
    "/datasets": {
        "get": {
            "summary": "List published datasets",
            "security": [],
            "responses": {"200": _ok("The datasets", {
                "type": "object",
                "properties": {"datasets": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"}, "current_version": {"type": "integer"},
                        "disclosed_at": {"type": "string", "format": "date-time"},
                        "accounts": {"type": "integer"}, "tweets": {"type": "integer"},
                        "releases_url": {"type": "string"},
                    },
                }}},
            })},
        }
    },
    "/datasets/{name}/releases": {
        "get": {
            "summary": "A dataset's release history, newest first (what changed, as counts only)",
            "security": [],
            "parameters": [_NAME],
            "responses": {
                "200": _ok("The releases", {
                    "type": "object",
                    "properties": {
                        "dataset": {"type": "string"}, "current_version": {"type": "integer"},
                        "releases": {"type": "array", "items": {
                            "type": "object",
                            "properties": {
                                "version": {"type": "integer"},
                                "status": {"type": "string", "enum": ["current", "withdrawn"]},
                                "created_at": {"type": "string", "format": "date-time"},
                                "parent_version": {"type": ["integer", "null"]},
                                "accounts": {"type": "integer"}, "tweets": {"type": "integer"},
                                "changes": _COUNTS, "url": {"type": "string"}, "manifest_url": {"type": "string"},
                            },
                        }},
                    },
                }),
                "404": _ERR,
            },
        }
    },
    "/datasets/{name}/releases/{version}/manifest": {
        "get": {
            "summary": "The manifest of a release; signed copies at /datasets/{name}/releases/{version}/manifest.json(.sig)",
            "security": [],
            "parameters": [_NAME, _VERSION],
            "responses": {
                "200": _ok("The manifest", {
                    "type": "object",
                    "properties": {
                        "dataset": {"type": "string"}, "version": {"type": "integer"},
                        "parent_version": {"type": ["integer", "null"]},
                        "created_at": {"type": "string", "format": "date-time"}, "key_id": {"type": "string"},
                        "summary": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "files": {"type": "array", "items": _FILE},
                    },
                }),
                "404": _ERR,
                "410": _GONE,
            },
        }
    },
    "/downloads": {
        "post": {
            "summary": "Give an email and accept the terms; get signed, expiring download links (also emailed)",
            "security": [],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object",
                "required": ["email", "dataset", "accept_terms"],
                "properties": {
                    "email": {"type": "string", "format": "email"},
                    "dataset": {"type": "string"},
                    "version": {"type": "integer", "description": "Default: the current release"},
                    "variant": {"type": "string", "enum": ["hashed"], "default": "hashed"},
                    "accept_terms": {"type": "boolean", "const": True},
                },
            }}}},
            "responses": {
                "201": _ok("The links", {
                    "type": "object",
                    "required": ["links"],
                    "properties": {
                        "dataset": {"type": "string"}, "version": {"type": "integer"}, "variant": {"type": "string"},
                        "expires_at": {"type": "string", "format": "date-time"},
                        "links": {"type": "array", "items": {
                            "type": "object",
                            "required": ["path", "url", "expires_at"],
                            "properties": {
                                "path": {"type": "string"}, "url": {"type": "string"},
                                "expires_at": {"type": "string", "format": "date-time"},
                                "bytes": {"type": "integer"}, "sha256": {"type": "string"},
                            },
                        }},
                    },
                }),
                "401": _ERR,
                "403": _ERR,
                "404": _ERR,
                "410": _GONE,
                "422": _ERR,
                "429": _ERR,
            },
        }
    },
}
