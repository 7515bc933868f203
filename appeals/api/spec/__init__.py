"""The OpenAPI document of /api/v1, built in this one package.

One module per area declares its paths (`PATHS` in tokens, owner, review, datasets,
reference); this module adds what every operation shares: the error responses every
route can give (all JSON {code, message}), the bearer security, and the check that
every API route is documented and every documented path is served. The route modules
in appeals/api hold routes only.
"""

from __future__ import annotations

import copy
import re

from appeals.api.spec import datasets, owner, reference, review, tokens
from appeals.api.spec.common import ERR

# The areas, in the order their paths appear in the document.
AREAS = (tokens, owner, review, datasets, reference)

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
        responses.setdefault(code, ERR)
    return operation


def paths() -> dict:
    """Every documented path with its operations, error responses included."""
    out: dict = {}
    for area in AREAS:
        for path, operations in area.PATHS.items():
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


def served_paths(app) -> set[tuple[str, str]]:
    """(path, method) of every API route of `app`, in OpenAPI spelling (the document itself aside)."""
    out = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "api.openapi_json":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len("/api/v1"):])
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            out.add((path, method.lower()))
    return out


def documented_paths() -> set[tuple[str, str]]:
    """(path, method) of every operation the document declares."""
    return {(path, method) for area in AREAS for path, operations in area.PATHS.items() for method in operations}


def gaps(app) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(routes of `app` the document does not declare, declared operations `app` does not serve)."""
    served, documented = served_paths(app), documented_paths()
    return served - documented, documented - served
