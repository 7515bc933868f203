"""The reviewer blueprint at /review (the routes live in views.py)."""

from flask import Blueprint

bp = Blueprint("reviewer", __name__, template_folder="templates")

from reviewer_ui import views  # noqa: E402,F401  (routes register themselves on `bp`)
