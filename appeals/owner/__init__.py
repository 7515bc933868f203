"""Owner-facing pages: login, where my account appears, filing and following an appeal."""

from flask import Blueprint

bp = Blueprint("owner", __name__, template_folder="templates")


# Placeholders so the shared layout renders; the owner pages' engineer replaces them.
@bp.get("/login")
def login():
    return "Log in"


@bp.post("/logout")
def logout():
    return "Logged out"


@bp.get("/me")
def home():
    return "My account"
