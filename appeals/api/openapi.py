"""GET /api/v1/openapi.json: the OpenAPI document, assembled in this one place.

Each area declares its paths next to its routes (`OPENAPI_PATHS` in tokens, owner,
review, datasets); this module adds what every operation shares: the error responses
every route can give (all JSON {code, message}), the bearer security, and a check that
every API route is documented and every documented path is served.
"""

from __future__ import annotations

import copy
import importlib

from flask import current_app, jsonify

from appeals.api import bp

# Route modules that contribute paths; each defines OPENAPI_PATHS.
PATH_MODULES = ("appeals.api.tokens", "appeals.api.owner", "appeals.api.review", "appeals.api.datasets",
                "appeals.api.reference")

_ERROR_REF = {"$ref": "#/components/responses/Error"}
# Statuses any operation may answer, whatever its own rules: malformed input, authentication,
# a method the path does not serve, an oversized body, rate limits, a server fault, Redis away.
COMMON_ERRORS = ("400", "405", "413", "415", "429", "500", "503")
AUTHENTICATED_ERRORS = ("401", "403")
BODY_ERRORS = ("422",)
PATH_ERRORS = ("404",)


def _complete(path: str, operation: dict) -> dict:
    operation = copy.deepcopy(operation)
    responses = operation.setdefault("responses", {})
    codes = list(COMMON_ERRORS)
    if operation.get("security", None) != []:
        codes += AUTHENTICATED_ERRORS
    if "requestBody" in operation or operation.get("parameters"):
        codes += BODY_ERRORS
    if "{" in path:
        codes += PATH_ERRORS
    for code in codes:
        responses.setdefault(code, _ERROR_REF)
    return operation


def paths() -> dict:
    """Every documented path with its operations, error responses included."""
    out: dict = {}
    for name in PATH_MODULES:
        module = importlib.import_module(name)
        for path, operations in getattr(module, "OPENAPI_PATHS", {}).items():
            out[path] = {method: _complete(path, op) for method, op in operations.items()}
    return out


def document() -> dict:
    """The whole OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Dataset appeals API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths(),
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
                    "description": "An error: every status of this API answers this JSON shape",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            },
        },
    }


def served_paths() -> set[tuple[str, str]]:
    """(path, method) of every API route of the running app, in OpenAPI spelling."""
    import re

    out = set()
    for rule in current_app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "api.openapi_json":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len("/api/v1"):])
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            out.add((path, method.lower()))
    return out


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI document (public)."""
    return jsonify(document())
