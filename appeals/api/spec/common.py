"""Pieces every area's OpenAPI paths share: the error response and the bounds of a path id."""

from __future__ import annotations

# Every error answers the one JSON shape {code, message, fields?}, declared once in the components.
ERR = {"$ref": "#/components/responses/Error"}

# A path id the database can hold (a signed 64-bit integer); larger ones are 404, not a crash.
ID_SCHEMA = {"type": "integer", "minimum": 0, "maximum": 9223372036854775807}
