"""POST /api/v1/tokens: bearer tokens for owners (username + password) and staff (+ otp); DELETE revokes one."""

from __future__ import annotations

from flask import g, jsonify

from appeals.api import bp, json_body, require_principal
from appeals.limits import login_limited
from appeals.services import auth
from appeals.web import actor_for


@bp.post("/tokens")
@login_limited("account")
def create_token():
    """Exchange credentials for a bearer token; staff must add a current TOTP code as `otp`."""
    data = json_body()
    token, lifetime = auth.create_token(data.get("username"), data.get("password"), data.get("otp"), actor_for(None))
    return jsonify({"token": token, "expires_in": lifetime}), 201


@bp.delete("/tokens")
def revoke_token():
    """Revoke the bearer token of this request (log out of the API); 204."""
    principal = require_principal()
    auth.revoke_token(g.api_token, actor_for(principal))
    return "", 204
