"""OpenAPI paths of the owner endpoints: /me, /me/footprint, /me/appeals, filing and following an appeal."""

from __future__ import annotations

from appeals.api.spec.common import ERR, ID_SCHEMA
from appeals.models import APPEAL_STATUSES, REASONS
from appeals.requests import TEXT_MAX

_DATE = {"type": ["string", "null"], "format": "date"}
_DATETIME = {"type": ["string", "null"], "format": "date-time"}

FOOTPRINT_ENTRY = {
    "type": "object",
    "required": ["dataset", "version", "authored_tweets", "referring_rows", "in_users_file", "hashed_publicly"],
    "properties": {
        "dataset": {"type": "string"},
        "version": {"type": "integer", "description": "The dataset's current release"},
        "authored_tweets": {"type": "integer", "description": "Tweets the account authored"},
        "referring_rows": {"type": "integer", "description": "Rows of other accounts that refer to this one"},
        "in_users_file": {"type": "boolean"},
        "hashed_publicly": {"type": "boolean", "description": "True: the public copy shows the account hashed"},
    },
}

TIMELINE_ITEM = {
    "type": "object",
    "required": ["type", "at"],
    "properties": {
        "type": {"type": "string", "enum": ["status", "message"]},
        "at": {"type": "string", "format": "date-time"},
        "status": {"type": "string", "enum": list(APPEAL_STATUSES)},
        "from_status": {"type": ["string", "null"]},
        "title": {"type": "string"},
        "note": {"type": ["string", "null"]},
        "data": {"type": ["object", "null"], "description": "releases {dataset: version}, remedy, reason_code"},
        "from": {"type": "string", "description": "Messages: 'you' or 'staff'"},
        "body": {"type": "string"},
    },
}

APPEAL = {
    "type": "object",
    "required": ["id", "status", "reason", "created_at", "timeline"],
    "properties": {
        "id": {"type": "integer"},
        "status": {"type": "string", "enum": list(APPEAL_STATUSES)},
        "status_title": {"type": "string"},
        "status_explanation": {"type": "string", "description": "What the status means and what comes next"},
        "is_open": {"type": "boolean"},
        "reason": {"type": "string", "enum": list(REASONS)},
        "reason_label": {"type": "string"},
        "statement": {"type": "string"},
        "contact_email": {"type": "string", "format": "email"},
        "compromised_from": _DATE,
        "compromised_until": _DATE,
        "new_information": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "due_at": _DATETIME,
        "info_due_at": _DATETIME,
        "version": {"type": "integer", "description": "Send back as `version` to refuse stale actions (409)"},
        "datasets": {"type": "array", "items": {
            "type": "object",
            "properties": {
                "dataset": {"type": "string"}, "version": {"type": "integer"},
                "authored_tweets": {"type": "integer"}, "referring_rows": {"type": "integer"},
                "hashed_publicly": {"type": "boolean"},
            },
        }},
        "decision": {"type": ["object", "null"], "properties": {
            "outcome": {"type": "string", "enum": ["approved", "denied"]},
            "remedy": {"type": ["string", "null"], "enum": ["remove", "rehash", None]},
            "reason_code": {"type": ["string", "null"]},
            "reason_label": {"type": ["string", "null"]},
            "statement": {"type": ["string", "null"], "description": "The statement of reasons"},
            "decided_at": _DATETIME,
            "new_appeal_from": _DATETIME,
        }},
        "releases": {"type": ["object", "null"], "additionalProperties": {"type": "integer"},
                     "description": "Corrected releases: dataset -> new version"},
        "can_reply": {"type": "boolean"},
        "can_withdraw": {"type": "boolean"},
        "timeline": {"type": "array", "items": TIMELINE_ITEM},
    },
}

_APPEAL_RESPONSE = {"application/json": {"schema": APPEAL}}


def _path_id(summary: str) -> list:
    return [{"name": "appeal_id", "in": "path", "required": True, "schema": ID_SCHEMA, "description": summary}]


PATHS = {
    "/me": {
        "get": {
            "summary": "The calling principal",
            "responses": {
                "200": {"description": "For an account: kind, id, user_id, screen_name, email, followers, suspended",
                        "content": {"application/json": {"schema": {"type": "object", "properties": {
                            "kind": {"type": "string", "enum": ["account", "staff", "researcher"]},
                            "id": {"type": "integer"}, "user_id": {"type": "string"},
                            "screen_name": {"type": "string"}, "email": {"type": ["string", "null"]},
                            "followers": {"type": "integer"}, "suspended": {"type": "boolean"}}}}}},
                "401": ERR,
            },
        }
    },
    "/me/footprint": {
        "get": {
            "summary": "Where the caller's account appears (owners only)",
            "responses": {
                "200": {"description": "One entry per published dataset holding the account",
                        "content": {"application/json": {"schema": {"type": "object", "properties": {
                            "user_id": {"type": "string"},
                            "datasets": {"type": "array", "items": FOOTPRINT_ENTRY}}}}}},
                "401": ERR, "403": ERR,
            },
        }
    },
    "/me/appeals": {
        "get": {
            "summary": "The caller's own appeals, newest first (owners only)",
            "responses": {
                "200": {"description": "Appeals", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"appeals": {"type": "array", "items": APPEAL}}}}}},
                "401": ERR, "403": ERR,
            },
        }
    },
    "/appeals": {
        "post": {
            "summary": "File an appeal covering every dataset the account appears in",
            "description": "Refused (409) when an appeal is open (`appeal_open`), the account is in no dataset "
                           "(`not_in_any_dataset`), or within the cool-down after a denial without "
                           "`new_information` (`reappeal_too_soon`). Invalid fields: 422 with `fields`.",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object",
                "required": ["reason", "statement", "contact_email"],
                "properties": {
                    "reason": {"type": "string", "enum": list(REASONS)},
                    "statement": {"type": "string", "minLength": 1, "maxLength": TEXT_MAX, "pattern": "\\S"},
                    "contact_email": {"type": "string", "format": "email"},
                    "compromised_from": {"type": ["string", "null"], "format": "date",
                                         "description": "Required when reason is compromised"},
                    "compromised_until": {"type": ["string", "null"], "format": "date",
                                          "description": "Required when reason is compromised"},
                    "new_information": {"type": ["string", "null"], "maxLength": TEXT_MAX,
                                        "description": "Required within the cool-down after a denial"},
                },
            }}}},
            "responses": {"201": {"description": "The new appeal", "content": _APPEAL_RESPONSE},
                          "401": ERR, "403": ERR, "409": ERR, "422": ERR},
        }
    },
    "/appeals/{appeal_id}": {
        "get": {
            "summary": "One appeal (owners: their own only; staff: the reviewer's view)",
            "parameters": _path_id("Appeal id"),
            "responses": {"200": {"description": "The appeal", "content": _APPEAL_RESPONSE},
                          "401": ERR, "403": ERR, "404": ERR},
        }
    },
    "/appeals/{appeal_id}/messages": {
        "post": {
            "summary": "Answer the reviewer's request for information (status info_requested)",
            "parameters": _path_id("Appeal id"),
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["body"],
                "properties": {"body": {"type": "string", "minLength": 1, "maxLength": TEXT_MAX},
                               "version": {"type": ["integer", "null"]}}}}}},
            "responses": {"201": {"description": "The appeal, back in review", "content": _APPEAL_RESPONSE},
                          "401": ERR, "403": ERR, "404": ERR, "409": ERR, "422": ERR},
        }
    },
    "/appeals/{appeal_id}/withdraw": {
        "post": {
            "summary": "Withdraw the appeal",
            "parameters": _path_id("Appeal id"),
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"version": {"type": ["integer", "null"]}}}}}},
            "responses": {"200": {"description": "The withdrawn appeal", "content": _APPEAL_RESPONSE},
                          "401": ERR, "403": ERR, "404": ERR, "409": ERR},
        }
    },
}
