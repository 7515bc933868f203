"""OpenAPI path of the staff reference data (reason codes and templates)."""

from __future__ import annotations

from appeals.api.spec.common import ERR

PATHS = {
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
                "401": ERR,
                "403": ERR,
            },
        }
    },
}
