"""Reviewer API: the queue, claims, decisions, four-eyes confirmation, notes, messages and the audit log."""

from __future__ import annotations

from flask import jsonify, request

from appeals.api import bp, json_body, optional_json_body, require_principal, string_fields
from appeals.services import audit_query, filing, queue, review
from appeals.requests import iso, json_version
from appeals.status import title
from appeals.web import actor_for


_version = json_version  # the optional "version" of the appeal the caller saw; checked when given

# GET endpoints that only read: their session runs in autocommit (db.begin_read_only), sparing the
# BEGIN and ROLLBACK round trips of a transaction; the session refuses any write.
READ_ONLY_ENDPOINTS = frozenset({"api.review_queue"})


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
        **filing.filed_fields(appeal),
        "due_at": iso(appeal.due_at),
        "datasets_at_filing": filing.filed_datasets(appeal),
        "evidence": data["evidence"],
        "timeline": data["timeline"],
        "notes": [{**n, "at": iso(n["at"])} for n in data["notes"]],
        "allowed": data["can"],
    })


@bp.post("/appeals/<int:appeal_id>/claim")
def review_claim(appeal_id: int):
    """Claim an appeal; 409 when someone else holds it."""
    principal = require_principal()
    data = optional_json_body()
    appeal = review.claim(principal, appeal_id, actor_for(principal), _version(data))
    return jsonify(appeal_json(appeal))


@bp.post("/appeals/<int:appeal_id>/release")
def review_release(appeal_id: int):
    """Release a claim (its holder, or any senior)."""
    principal = require_principal()
    data = optional_json_body()
    appeal = review.release(principal, appeal_id, actor_for(principal), _version(data))
    return jsonify(appeal_json(appeal))


@bp.post("/appeals/<int:appeal_id>/decision")
def review_decision(appeal_id: int):
    """Approve (remedy), deny (reason_code), request_info or escalate, with a statement."""
    principal = require_principal()
    data = json_body()
    string_fields(data, ("action", "remedy", "reason_code", "statement"))
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
    data = optional_json_body()
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
