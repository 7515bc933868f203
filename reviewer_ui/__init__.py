"""The reviewer blueprint: queue, appeal page, decisions, audit, dashboard, admin."""

from flask import Blueprint

bp = Blueprint("reviewer", __name__, template_folder="templates")


@bp.get("/")
def queue():
    """Placeholder so the shared layout renders; the reviewer engineer replaces it."""
    return "Review queue"
