"""Staff API: the reason codes and templates a decision or a message can use."""

from __future__ import annotations

from flask import jsonify

from appeals.api import bp, require_principal
from appeals.services import reference


@bp.get("/reference")
def reference_listing():
    """Active reason codes with `applies_to`, and active templates (staff only)."""
    return jsonify(reference.listing(require_principal()))
