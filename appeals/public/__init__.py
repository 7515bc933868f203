"""Public pages: datasets, release history, gated downloads, researcher access."""

from flask import Blueprint

bp = Blueprint("public", __name__, template_folder="templates")


# Placeholders so the shared layout renders; the public pages' engineer replaces them.
@bp.get("/")
def index():
    return "Dataset appeals"


@bp.get("/datasets")
def datasets():
    return "Datasets"
