"""GET /api/v1/openapi.json: the OpenAPI document, built in appeals/api/spec."""

from __future__ import annotations

from flask import jsonify

from appeals.api import bp
from appeals.api.spec import document


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI document (public)."""
    return jsonify(document())
