"""Pieces every area's OpenAPI paths share: the error response and the bounds of a path id."""

from __future__ import annotations

from appeals.requests import NUMBER_MAX

# Every error answers the one JSON shape {code, message, fields?}, declared once in the components.
ERR = {"$ref": "#/components/responses/Error"}

# A path id the database can hold (an SQL INTEGER); larger ones are 404, not a crash.
ID_SCHEMA = {"type": "integer", "minimum": 0, "maximum": NUMBER_MAX}
