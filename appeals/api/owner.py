"""Owner endpoints of /api/v1: who am I, where does my account appear, file and follow an appeal."""

from __future__ import annotations

from flask import jsonify, url_for

from appeals.api import bp, json_body, optional_json_body, require_principal, string_fields
from appeals.models import Staff
from appeals.requests import json_version
from appeals.services import accounts, filing, footprint
from appeals.web import actor_for


@bp.get("/me")
def owner_me():
    """The calling principal."""
    return jsonify(accounts.whoami(require_principal()))


@bp.get("/me/footprint")
def owner_footprint():
    """Each published dataset holding the caller's account, from the engine's account index."""
    principal = require_principal()
    return jsonify({"user_id": getattr(principal, "user_id", None), "datasets": footprint.for_owner(principal)})


@bp.get("/me/appeals")
def owner_appeals():
    """The caller's own appeals, newest first."""
    principal = require_principal()
    return jsonify({"appeals": [filing.appeal_to_owner_dict(a) for a in filing.list_own_appeals(principal)]})


@bp.post("/appeals")
def owner_file_appeal():
    """File an appeal covering every dataset the caller's account appears in."""
    principal = require_principal()
    fields = ("reason", "statement", "contact_email", "compromised_from", "compromised_until", "new_information")
    appeal = filing.file_appeal(principal, actor_for(principal), string_fields(json_body(), fields))
    response = jsonify(filing.appeal_to_owner_dict(appeal))
    response.headers["Location"] = url_for("api.appeal_detail", appeal_id=appeal.id)
    return response, 201


@bp.get("/appeals/<int:appeal_id>")
def appeal_detail(appeal_id: int):
    """One appeal: the owner's view for its owner; staff get the reviewer's view (api/review.py)."""
    principal = require_principal()
    if isinstance(principal, Staff):
        from appeals.api.review import staff_appeal_json

        return staff_appeal_json(principal, appeal_id)
    return jsonify(filing.appeal_to_owner_dict(filing.get_own_appeal(principal, appeal_id)))


@bp.post("/appeals/<int:appeal_id>/messages")
def owner_reply(appeal_id: int):
    """Answer a request for information; the appeal goes back to its reviewer."""
    principal = require_principal()
    data = json_body()
    appeal = filing.reply(principal, actor_for(principal), appeal_id, data.get("body"), json_version(data))
    return jsonify(filing.appeal_to_owner_dict(appeal)), 201


@bp.post("/appeals/<int:appeal_id>/withdraw")
def owner_withdraw(appeal_id: int):
    """Withdraw the caller's appeal."""
    principal = require_principal()
    data = optional_json_body()
    appeal = filing.withdraw(principal, actor_for(principal), appeal_id, json_version(data))
    return jsonify(filing.appeal_to_owner_dict(appeal))
