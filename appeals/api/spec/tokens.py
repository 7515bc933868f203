"""OpenAPI paths of the token endpoints (POST and DELETE /tokens)."""

from __future__ import annotations

from appeals.api.spec.common import ERR

PATHS = {
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
                "401": ERR,
            },
        },
        "delete": {
            "summary": "Revoke the bearer token of this request (log out of the API)",
            "responses": {"204": {"description": "Revoked"}},
        },
    }
}
