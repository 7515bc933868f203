"""Owner-facing pages: login, where my account appears, filing and following an appeal."""

from flask import Blueprint

bp = Blueprint("owner", __name__, template_folder="templates")
