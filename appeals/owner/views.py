"""Owner pages: each view parses the form, calls one service function and renders the result."""

from __future__ import annotations

import secrets
from datetime import date, datetime

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import login_required, login_user, logout_user

from appeals import runtime
from appeals.extensions import limiter, login_manager
from appeals.owner import bp
from appeals.requests import TEXT_MAX, form_version
from appeals.services import accounts, filing
from appeals.services.errors import Conflict, Invalid, ServiceError, Unauthorized
from appeals.web import actor_for, current_principal, login_identity_key, safe_next

TOO_MANY_LOGINS = "Too many login attempts. Wait a minute and try again."


def _login_limit() -> str:
    return runtime.settings().login_rate_limit


def _failed_login(response) -> bool:
    # Only failed attempts count against the limits: a successful login redirects.
    return response.status_code != 302


def _when(value) -> str:
    """An ISO timestamp or date as people read it: '3 May 2024, 14:05 UTC'."""
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return f"{value.day} {value:%B %Y, %H:%M} UTC"
    return f"{value.day} {value:%B %Y}"


@bp.context_processor
def _template_helpers() -> dict:
    return {"when": _when, "reason_labels": filing.REASON_LABELS, "text_max": TEXT_MAX}


@bp.errorhandler(ServiceError)
def _service_error(error: ServiceError):
    if isinstance(error, Unauthorized):
        return login_manager.unauthorized()
    return render_template("error.html", code=error.status, description=error.message), error.status


@bp.errorhandler(429)
def _too_many(error):
    return render_template("owner/login.html", error=TOO_MANY_LOGINS, errors={}, username="",
                           next=""), 429


# --- login and logout -----------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], error_message=TOO_MANY_LOGINS, deduct_when=_failed_login)
@limiter.limit(_login_limit, methods=["POST"], key_func=login_identity_key, error_message=TOO_MANY_LOGINS,
               deduct_when=_failed_login)
def login():
    """Log in a platform account with its screen name or email and password."""
    principal = current_principal()
    if request.method == "GET":
        if principal is not None and principal.kind == "account":
            return redirect(url_for("owner.home"))
        return render_template("owner/login.html", error=None, errors={}, username="",
                               next=safe_next(request.args.get("next")) or "")
    username = request.form.get("username", "")
    target = safe_next(request.form.get("next"))
    try:
        account = accounts.login(username, request.form.get("password", ""), actor_for(None))
    except (Invalid, Unauthorized) as error:
        return render_template("owner/login.html", error=error.message, errors=error.fields,
                               username=username, next=target or ""), error.status
    # A fresh session at login: nothing from before (including a planted session) survives.
    session.clear()
    session["nonce"] = secrets.token_urlsafe(16)
    login_user(account)
    flash(f"You are logged in as @{account.screen_name}.", "success")
    return redirect(target or url_for("owner.home"))


@bp.post("/logout")
def logout():
    """Log out whoever is logged in (owner, staff or researcher)."""
    logout_user()
    session.clear()
    flash("You are logged out.", "success")
    return redirect(url_for("public.index"))


# --- where my account appears --------------------------------------------------------------


@bp.get("/me")
@login_required
def home():
    """Where the account appears, its appeals, and the way to file one."""
    return render_template("owner/home.html", **filing.overview(current_principal()))


# --- filing ------------------------------------------------------------------------------------


@bp.route("/appeals/new", methods=["GET", "POST"])
@login_required
def new_appeal():
    """The filing form; on success, the new appeal's page."""
    principal = current_principal()
    if request.method == "GET":
        status = filing.filing_status(principal)
        form = {"contact_email": status["account"]["email"] or ""}
        return render_template("owner/file.html", form=form, errors={}, error=None, **status)
    form = request.form.to_dict()
    form.pop("csrf_token", None)
    try:
        appeal = filing.file_appeal(principal, actor_for(principal), form)
    except (Invalid, Conflict) as error:
        status = filing.filing_status(principal)
        return render_template("owner/file.html", form=form, errors=error.fields, error=error.message,
                               **status), error.status
    flash(f"Your appeal #{appeal.id} has been filed. We sent a confirmation to {appeal.contact_email}.", "success")
    return redirect(url_for("owner.appeal", appeal_id=appeal.id), 303)


# --- following ---------------------------------------------------------------------------------


def _appeal_page(appeal_id: int, status: int = 200, **extra):
    appeal = filing.appeal_to_owner_dict(filing.get_own_appeal(current_principal(), appeal_id))
    context = {"reply_error": None, "reply_body": "", "withdraw_error": None, **extra}
    return render_template("owner/appeal.html", appeal=appeal, **context), status


@bp.get("/appeals/<int:appeal_id>")
@login_required
def appeal(appeal_id: int):
    """The appeal's status, timeline, and what the owner can do next."""
    return _appeal_page(appeal_id)


@bp.post("/appeals/<int:appeal_id>/reply")
@login_required
def reply(appeal_id: int):
    """Answer the reviewer's request for information."""
    principal = current_principal()
    body = request.form.get("body", "")
    try:
        filing.reply(principal, actor_for(principal), appeal_id, body, form_version(request.form))
    except (Invalid, Conflict) as error:
        return _appeal_page(appeal_id, error.status, reply_error=error.message, reply_body=body)
    flash("Thank you. Your reply has been sent to the reviewer.", "success")
    return redirect(url_for("owner.appeal", appeal_id=appeal_id), 303)


@bp.post("/appeals/<int:appeal_id>/withdraw")
@login_required
def withdraw(appeal_id: int):
    """Withdraw the appeal, once the owner has ticked the confirmation box."""
    principal = current_principal()
    if request.form.get("confirm") != "yes":
        # Renders through get_own_appeal, so someone else's appeal still answers 404.
        return _appeal_page(appeal_id, 422, withdraw_error="Tick the box to confirm that you want to withdraw.")
    try:
        filing.withdraw(principal, actor_for(principal), appeal_id, form_version(request.form))
    except (Invalid, Conflict) as error:
        return _appeal_page(appeal_id, error.status, withdraw_error=error.message)
    flash("Your appeal has been withdrawn.", "success")
    return redirect(url_for("owner.appeal", appeal_id=appeal_id), 303)
