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


OPENAPI_PATHS = {
    "/tokens": {
        "post": {
            "summary": "Create a bearer token",
            "security": [],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["username", "password"],
                            "properties": {
                                "username": {"type": "string", "description": "Screen name or email; staff: email"},
                                "password": {"type": "string"},
                                "otp": {"type": "string", "description": "Staff only: current TOTP code"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "201": {
                    "description": "A token",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["token", "expires_in"],
                                "properties": {"token": {"type": "string"}, "expires_in": {"type": "integer"}},
                            }
                        }
                    },
                },
                # Wrong credentials, or a staff login without a current code: an operation that needs no
                # token can still refuse the credentials it is given.
                "401": {"$ref": "#/components/responses/Error"},
            },
        },
        "delete": {
            "summary": "Revoke the bearer token of this request (log out of the API)",
            "responses": {"204": {"description": "Revoked"}},
        },
    }
}
