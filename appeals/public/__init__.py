"""Public pages: datasets, release history, gated downloads, researcher access."""

from flask import Blueprint

bp = Blueprint("public", __name__, template_folder="templates")
