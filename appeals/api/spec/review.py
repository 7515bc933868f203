"""OpenAPI paths of the reviewer endpoints: queue, claims, decisions, notes, messages, audit, dashboard."""

from __future__ import annotations

from appeals.api.spec.common import ERR, ID_SCHEMA
from appeals.models import APPEAL_STATUSES
from appeals.services import audit_query, queue, review

_APPEAL_STATE = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"}, "version": {"type": ["integer", "null"]}, "status": {"type": "string"},
        "status_text": {"type": "string"}, "assigned_to_id": {"type": ["integer", "null"]},
        "claim_touched_at": {"type": ["string", "null"]}, "decision": {"type": "object"},
        "info_due_at": {"type": ["string", "null"]},
    },
}
_STATE_RESPONSE = {"description": "The appeal's new state",
                   "content": {"application/json": {"schema": _APPEAL_STATE}}}
_VERSION_BODY = {
    "required": False,
    "content": {"application/json": {"schema": {"type": "object", "properties": {
        "version": {"type": ["integer", "null"], "description": "The version you saw; 409 when the appeal changed since"}}}}},
}
_ID = [{"name": "appeal_id", "in": "path", "required": True, "schema": ID_SCHEMA}]


def _action(summary: str, body: dict | None = None, extra: dict | None = None) -> dict:
    responses = {"200": _STATE_RESPONSE, "401": ERR, "403": ERR, "404": ERR, "409": ERR, "422": ERR}
    responses.update(extra or {})
    return {"post": {"summary": summary, "parameters": _ID, "requestBody": body or _VERSION_BODY,
                     "responses": responses}}


def _query(name: str, schema: dict, description: str) -> dict:
    # An empty value means "not given" for every filter: the document says so.
    if "enum" in schema:
        schema = {**schema, "enum": [*schema["enum"], ""]}
    elif schema.get("type") in ("integer", "boolean") or "format" in schema:
        empty = {"type": "string", "maxLength": 0}
        if "format" in schema:
            schema = {"type": "string", "pattern": r"^(\d{4}-\d{2}-\d{2})?$"}
        else:
            schema = {"anyOf": [schema, empty]}
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


PATHS = {
    "/queue": {"get": {
        "summary": "The review queue (staff)",
        "parameters": [
            _query("status", {"type": "string", "enum": list(queue.STATUS_GROUPS) + list(APPEAL_STATUSES)},
                   "waiting (default), open, all, or one status"),
            _query("reason", {"type": "string", "enum": ["included_in_error", "compromised", "other"]}, "Reason"),
            _query("dataset", {"type": "string", "maxLength": 128}, "Only appeals about this dataset"),
            _query("assigned", {"type": "string", "enum": ["me", "unassigned"]}, "Claimed by me, or by nobody"),
            _query("min_age_days", {"type": "integer", "minimum": 0, "maximum": 3650}, "Filed at least this many days ago"),
            _query("overdue", {"type": "boolean"}, "Only appeals past their SLA due date"),
            _query("sort", {"type": "string", "enum": list(queue.SORTS)}, "oldest (default), newest, due, footprint"),
            _query("page", {"type": "integer", "minimum": 1, "maximum": 100000}, "Page number"),
            _query("per_page", {"type": "integer", "minimum": 1, "maximum": queue.MAX_PER_PAGE}, "Page size"),
        ],
        "responses": {
            "200": {"description": "A page of appeals with counts per status", "content": {"application/json": {
                "schema": {"type": "object", "properties": {
                    "items": {"type": "array", "items": {"type": "object"}}, "total": {"type": "integer"},
                    "page": {"type": "integer"}, "per_page": {"type": "integer"}, "pages": {"type": "integer"},
                    "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "overdue": {"type": "integer"}}}}}},
            "401": ERR, "403": ERR, "422": ERR,
        },
    }},
    "/queue/claim-next": {"post": {
        "summary": "Claim the oldest unclaimed appeal",
        "responses": {"200": _STATE_RESPONSE, "204": {"description": "Nothing to claim"}, "401": ERR, "403": ERR},
    }},
    "/review/appeals/{appeal_id}": {"get": {
        "summary": "An appeal with its evidence, footprint, samples, timeline and internal notes (staff)",
        "parameters": _ID,
        "responses": {"200": {"description": "The appeal", "content": {"application/json": {
            "schema": {"type": "object"}}}}, "401": ERR, "403": ERR, "404": ERR},
    }},
    "/appeals/{appeal_id}/claim": _action("Claim an appeal (409 when someone else holds it)"),
    "/appeals/{appeal_id}/release": _action("Release a claim (holder or senior)"),
    "/appeals/{appeal_id}/decision": _action("Decide: approve, deny, request information or escalate", {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object", "required": ["action", "statement"],
            "properties": {
                "action": {"type": "string", "enum": list(review.DECISIONS)},
                "remedy": {"type": "string", "enum": ["remove", "rehash"], "description": "approve only"},
                "reason_code": {"type": "string", "description": "Required to deny; optional to approve"},
                "statement": {"type": "string", "description": "Statement of reasons, question, or escalation note"},
                "version": {"type": ["integer", "null"]},
            }}}},
    }),
    "/appeals/{appeal_id}/confirm": _action(
        "Confirm an approval (senior, not the approver); queues the correction"),
    "/appeals/{appeal_id}/send-back": _action("Send an approval back to review (senior)", {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object", "required": ["reason"], "properties": {
            "reason": {"type": "string"}, "version": {"type": ["integer", "null"]}}}}},
    }),
    "/appeals/{appeal_id}/notes": {"post": {
        "summary": "Add an internal note", "parameters": _ID,
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["body"], "properties": {"body": {"type": "string"}}}}}},
        "responses": {"201": {"description": "The note"}, "401": ERR, "403": ERR, "404": ERR, "422": ERR},
    }},
    "/review/appeals/{appeal_id}/messages": {"post": {
        "summary": "Send the owner a message (claim holder)", "parameters": _ID,
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["body"],
            "properties": {"body": {"type": "string"}, "version": {"type": ["integer", "null"]}}}}}},
        "responses": {"201": {"description": "The message"}, "401": ERR, "403": ERR, "404": ERR,
                      "409": ERR, "422": ERR},
    }},
    "/audit": {"get": {
        "summary": "The audit log, newest first (staff)",
        "parameters": [
            _query("action", {"type": "string", "maxLength": 254}, "An action, or a prefix ending in '.' (e.g. appeal.)"),
            _query("actor", {"type": "string", "maxLength": 254}, "Part of the actor's label (email)"),
            _query("object_type", {"type": "string", "maxLength": 254}, "appeal, staff, correction..."),
            _query("object_id", {"type": "string", "maxLength": 254}, "The object's id"),
            _query("since", {"type": "string", "format": "date"}, "From this day (UTC)"),
            _query("until", {"type": "string", "format": "date"}, "To this day (UTC), inclusive"),
            _query("page", {"type": "integer", "minimum": 1, "maximum": 100000}, "Page number"),
            _query("per_page", {"type": "integer", "minimum": 1, "maximum": audit_query.MAX_PER_PAGE}, "Page size"),
        ],
        "responses": {"200": {"description": "Entries", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"items": {"type": "array", "items": {"type": "object"}},
                                             "page": {"type": "integer"}, "has_next": {"type": "boolean"}}}}}},
                      "401": ERR, "403": ERR, "422": ERR},
    }},
    "/dashboard": {"get": {
        "summary": "Review metrics: depth, median time to decision, approval rate, overdue, corrections",
        "responses": {"200": {"description": "Metrics", "content": {"application/json": {
            "schema": {"type": "object"}}}}, "401": ERR, "403": ERR},
    }},
}
