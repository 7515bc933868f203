"""GET /api/v1/openapi.json: the OpenAPI document, assembled from each route module's paths."""

from __future__ import annotations

import importlib

from flask import jsonify

from appeals.api import bp

# Route modules that contribute paths; each defines OPENAPI_PATHS.
PATH_MODULES = ("appeals.api.tokens", "appeals.api.owner", "appeals.api.review", "appeals.api.datasets",
                "appeals.api.reference")


def document() -> dict:
    """The whole OpenAPI 3.1 document."""
    paths: dict = {}
    for name in PATH_MODULES:
        module = importlib.import_module(name)
        paths.update(getattr(module, "OPENAPI_PATHS", {}))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Dataset appeals API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                }
            },
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI document (public)."""
    return jsonify(document())
