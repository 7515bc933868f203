"""Owner-facing pages: login, where my account appears, filing and following an appeal."""

from flask import Blueprint

bp = Blueprint("owner", __name__, template_folder="templates")

from appeals.owner import views  # noqa: E402,F401  (routes register themselves on `bp`)
