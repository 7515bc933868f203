"""POST /api/v1/tokens: bearer tokens for owners (username + password) and staff (+ otp)."""

from __future__ import annotations

from flask import jsonify

from appeals import db, runtime
from appeals.api import bp, json_body
from appeals.extensions import limiter
from appeals.i18n import gettext as _
from appeals.services import auth, audit
from appeals.services.errors import Invalid, Unauthorized
from appeals.web import actor_for, login_identity_key


def _login_limit() -> str:
    return runtime.settings().login_rate_limit


@bp.post("/tokens")
@limiter.limit(_login_limit)
@limiter.limit(_login_limit, key_func=login_identity_key)
def create_token():
    """Exchange credentials for a bearer token; staff must add a current TOTP code as `otp`."""
    data = json_body()
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise Invalid(_("username and password are required."),
                      fields={"username": _("required"), "password": _("required")})
    otp = data.get("otp")
    if otp is not None:
        principal = auth.authenticate_staff(username, password, str(otp))
    else:
        principal = auth.authenticate_account(username, password)
    if principal is None:
        db.session.commit()  # keep a consumed TOTP step even when the login fails later
        raise Unauthorized(_("Those credentials are not valid."), code="invalid_credentials")
    audit.record(actor_for(principal), "api_token.create", principal.kind, principal.id)
    token = auth.issue_token(principal)
    return jsonify({"token": token, "expires_in": int(auth.TOKEN_LIFETIME.total_seconds())}), 201


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
                                "properties": {"token": {"type": "string"}, "expires_in": {"type": "integer"}},
                            }
                        }
                    },
                },
                "401": {"$ref": "#/components/responses/Error"},
                "422": {"$ref": "#/components/responses/Error"},
                "429": {"$ref": "#/components/responses/Error"},
            },
        }
    }
}
