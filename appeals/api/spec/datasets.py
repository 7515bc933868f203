"""OpenAPI paths of the public dataset endpoints: catalogue, releases, manifests, download links."""

from __future__ import annotations

from appeals.api.spec.common import ERR, ID_SCHEMA

_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": ID_SCHEMA}
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


PATHS = {
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
                "404": ERR,
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
                "404": ERR,
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
                "401": ERR,
                "403": ERR,
                "404": ERR,
                "410": _GONE,
                "422": ERR,
                "429": ERR,
            },
        }
    },
}
