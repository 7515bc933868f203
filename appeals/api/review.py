"""Reviewer API: the queue, claims, decisions, four-eyes confirmation, notes, messages and the audit log."""

from __future__ import annotations

from flask import jsonify, request

from appeals.api import bp, json_body, require_principal
from appeals.services import audit_query, queue, review
from appeals.models import APPEAL_STATUSES
from appeals.services.errors import Invalid
from appeals.requests import iso, json_version
from appeals.status import title
from appeals.web import actor_for


_version = json_version  # the optional "version" of the appeal the caller saw; checked when given


def _optional_body() -> dict:
    # Claim and release need no body; an empty or missing one is fine.
    if not request.get_data():
        return {}
    return json_body()


def appeal_json(appeal) -> dict:
    """The staff view of an appeal's state (no evidence): what the action endpoints return."""
    return {
        "id": appeal.id,
        "version": appeal.version,
        "status": appeal.status,
        "status_text": title(appeal.status),
        "assigned_to_id": appeal.assigned_to_id,
        "claim_touched_at": iso(appeal.claim_touched_at),
        "decision": {
            "remedy": appeal.decision_remedy,
            "reason_code": appeal.decision_reason_code,
            "statement": appeal.decision_statement,
            "approved_by_id": appeal.approved_by_id,
            "decided_at": iso(appeal.decided_at),
            "confirmed_by_id": appeal.confirmed_by_id,
            "confirmed_at": iso(appeal.confirmed_at),
        },
        "info_due_at": iso(appeal.info_due_at),
    }


@bp.get("/queue")
def review_queue():
    """A page of the review queue with counts per status."""
    principal = require_principal()
    page = queue.list_queue(principal, queue.parse_filters(request.args))
    return jsonify({
        "items": [queue.describe(appeal, page) for appeal in page.items],
        "total": page.total,
        "page": page.filters.page,
        "per_page": page.filters.per_page,
        "pages": page.pages,
        "counts": page.counts,
        "overdue": page.overdue,
    })


@bp.post("/queue/claim-next")
def review_claim_next():
    """Claim the oldest unclaimed appeal; 204 when the queue is empty."""
    principal = require_principal()
    appeal = review.claim_next(principal, actor_for(principal))
    if appeal is None:
        return "", 204
    return jsonify(appeal_json(appeal))


@bp.get("/review/appeals/<int:appeal_id>")
def review_appeal(appeal_id: int):
    """Everything a reviewer sees on an appeal (also served at GET /appeals/<id> for staff)."""
    return staff_appeal_json(require_principal(), appeal_id)


def staff_appeal_json(principal, appeal_id: int):
    """The staff view of an appeal: statement, evidence, footprint, samples, timeline, notes."""
    data = review.appeal_page(principal, appeal_id)
    appeal = data["appeal"]
    return jsonify({
        **appeal_json(appeal),
        "account": {"user_id": appeal.account.user_id, "screen_name": appeal.account.screen_name,
                    "followers": appeal.account.followers, "suspended": appeal.account.suspended},
        "reason": appeal.reason,
        "statement": appeal.statement,
        "contact_email": appeal.contact_email,
        "compromised_from": appeal.compromised_from and appeal.compromised_from.isoformat(),
        "compromised_until": appeal.compromised_until and appeal.compromised_until.isoformat(),
        "new_information": appeal.new_information,
        "created_at": iso(appeal.created_at),
        "due_at": iso(appeal.due_at),
        "datasets_at_filing": [
            {"dataset": d.dataset, "version": d.version, "authored_tweets": d.authored_tweets,
             "referring_rows": d.referring_rows, "hashed_publicly": d.hashed_publicly}
            for d in appeal.datasets
        ],
        "evidence": data["evidence"],
        "timeline": data["timeline"],
        "notes": [{**n, "at": iso(n["at"])} for n in data["notes"]],
        "allowed": data["can"],
    })


@bp.post("/appeals/<int:appeal_id>/claim")
def review_claim(appeal_id: int):
    """Claim an appeal; 409 when someone else holds it."""
    principal = require_principal()
    data = _optional_body()
    appeal = review.claim(principal, appeal_id, actor_for(principal), _version(data))
    return jsonify(appeal_json(appeal))


@bp.post("/appeals/<int:appeal_id>/release")
def review_release(appeal_id: int):
    """Release a claim (its holder, or any senior)."""
    principal = require_principal()
    data = _optional_body()
    appeal = review.release(principal, appeal_id, actor_for(principal), _version(data))
    return jsonify(appeal_json(appeal))


@bp.post("/appeals/<int:appeal_id>/decision")
def review_decision(appeal_id: int):
    """Approve (remedy), deny (reason_code), request_info or escalate, with a statement."""
    principal = require_principal()
    data = json_body()
    for name in ("action", "remedy", "reason_code", "statement"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise Invalid(f"{name} must be a string.", fields={name: "Must be a string."})
    appeal = review.decide(
        principal, appeal_id, actor_for(principal), data.get("action") or "",
        remedy=data.get("remedy"), reason_code=data.get("reason_code"),
        statement=data.get("statement") or "", expected_version=_version(data),
    )
    return jsonify(appeal_json(appeal))


@bp.post("/appeals/<int:appeal_id>/confirm")
def review_confirm(appeal_id: int):
    """A senior other than the approver confirms; the correction is queued."""
    principal = require_principal()
    data = _optional_body()
    appeal = review.confirm(principal, appeal_id, actor_for(principal), _version(data))
    return jsonify(appeal_json(appeal))


@bp.post("/appeals/<int:appeal_id>/send-back")
def review_send_back(appeal_id: int):
    """A senior returns an approval to review, with an internal reason."""
    principal = require_principal()
    data = json_body()
    appeal = review.send_back(principal, appeal_id, actor_for(principal), data.get("reason") or "",
                              _version(data))
    return jsonify(appeal_json(appeal))


@bp.post("/appeals/<int:appeal_id>/notes")
def review_note(appeal_id: int):
    """Add an internal note (never shown to the owner)."""
    principal = require_principal()
    data = json_body()
    note = review.add_note(principal, appeal_id, actor_for(principal), data.get("body"))
    return jsonify({"id": note.id, "at": iso(note.created_at), "body": note.body}), 201


@bp.post("/review/appeals/<int:appeal_id>/messages")
def review_message(appeal_id: int):
    """Send the owner a message (needs the claim); placeholders must be filled."""
    principal = require_principal()
    data = json_body()
    message = review.send_message(principal, appeal_id, actor_for(principal), data.get("body"), _version(data))
    return jsonify({"id": message.id, "at": iso(message.created_at), "body": message.body}), 201


@bp.get("/audit")
def review_audit():
    """The audit log, newest first, filtered."""
    principal = require_principal()
    result = audit_query.search(principal, audit_query.parse_filters(request.args))
    return jsonify({"items": [audit_query.describe(e) for e in result["entries"]],
                    "page": result["page"], "has_next": result["has_next"]})


@bp.get("/dashboard")
def review_dashboard():
    """Queue depth, median time to decision, approval rate, overdue and corrections."""
    principal = require_principal()
    data = queue.dashboard(principal)
    data["failed_corrections"] = [
        {"id": c.id, "appeal_id": c.appeal_id, "remedy": c.remedy, "attempts": c.attempts, "error": c.error}
        for c in data["failed_corrections"]
    ]
    data["running_runs"] = [{"id": r.id, "progress": r.progress} for r in data["running_runs"]]
    return jsonify(data)


# --- OpenAPI ---------------------------------------------------------------------------------

_ERR = {"$ref": "#/components/responses/Error"}
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
_ID = [{"name": "appeal_id", "in": "path", "required": True,
        "schema": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807}}]


def _action(summary: str, body: dict | None = None, extra: dict | None = None) -> dict:
    responses = {"200": _STATE_RESPONSE, "401": _ERR, "403": _ERR, "404": _ERR, "409": _ERR, "422": _ERR}
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


OPENAPI_PATHS = {
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
            "401": _ERR, "403": _ERR, "422": _ERR,
        },
    }},
    "/queue/claim-next": {"post": {
        "summary": "Claim the oldest unclaimed appeal",
        "responses": {"200": _STATE_RESPONSE, "204": {"description": "Nothing to claim"}, "401": _ERR, "403": _ERR},
    }},
    "/review/appeals/{appeal_id}": {"get": {
        "summary": "An appeal with its evidence, footprint, samples, timeline and internal notes (staff)",
        "parameters": _ID,
        "responses": {"200": {"description": "The appeal", "content": {"application/json": {
            "schema": {"type": "object"}}}}, "401": _ERR, "403": _ERR, "404": _ERR},
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
        "responses": {"201": {"description": "The note"}, "401": _ERR, "403": _ERR, "404": _ERR, "422": _ERR},
    }},
    "/review/appeals/{appeal_id}/messages": {"post": {
        "summary": "Send the owner a message (claim holder)", "parameters": _ID,
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["body"],
            "properties": {"body": {"type": "string"}, "version": {"type": ["integer", "null"]}}}}}},
        "responses": {"201": {"description": "The message"}, "401": _ERR, "403": _ERR, "404": _ERR,
                      "409": _ERR, "422": _ERR},
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
                      "401": _ERR, "403": _ERR, "422": _ERR},
    }},
    "/dashboard": {"get": {
        "summary": "Review metrics: depth, median time to decision, approval rate, overdue, corrections",
        "responses": {"200": {"description": "Metrics", "content": {"application/json": {
            "schema": {"type": "object"}}}}, "401": _ERR, "403": _ERR},
    }},
}
