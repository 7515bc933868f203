"""Staff API: the reason codes and templates a decision or a message can use."""

from __future__ import annotations

from flask import jsonify

from appeals.api import bp, require_principal
from appeals.services import reference


@bp.get("/reference")
def reference_listing():
    """Active reason codes with `applies_to`, and active templates (staff only)."""
    return jsonify(reference.listing(require_principal()))


OPENAPI_PATHS = {
    "/reference": {
        "get": {
            "summary": "Active reason codes (with the decision each applies to) and active message templates",
            "responses": {
                "200": {"description": "The reference data", "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {
                        "reason_codes": {"type": "array", "items": {"type": "object", "properties": {
                            "code": {"type": "string"}, "label": {"type": "string"},
                            "applies_to": {"type": "string", "enum": ["approve", "deny", "any"]}}}},
                        "templates": {"type": "array", "items": {"type": "object", "properties": {
                            "id": {"type": "integer"}, "name": {"type": "string"}, "body": {"type": "string"},
                            "placeholders": {"type": "array", "items": {"type": "string"}}}}},
                    },
                }}}},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
            },
        }
    },
}
