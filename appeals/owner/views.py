"""Owner pages: each view parses the form, calls one service function and renders the result."""

from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, send_file, session, url_for
from flask_login import login_required, logout_user

from appeals import i18n, languages, runtime
from appeals.extensions import login_manager
from appeals.limits import login_limited
from appeals.i18n import N_
from appeals.i18n import gettext as _
from appeals.owner import bp
from appeals.requests import TEXT_MAX, form_version
from appeals.services import accounts, auth, evidence, filing, outcome
from appeals.services.errors import Conflict, Invalid, ServiceError, Unauthorized
from appeals.sessions import start_session
from appeals.web import actor_for, current_principal, safe_next

# A plain str (the limiter hashes it); pages show it translated.
TOO_MANY_LOGINS = N_("Too many login attempts. Wait a minute and try again.")


@bp.context_processor
def _template_helpers() -> dict:
    return {"when": i18n.when, "reason_labels": filing.REASON_LABELS, "text_max": TEXT_MAX,
            "field_order": filing.FIELD_ORDER, "max_files": evidence.MAX_FILES,
            "max_mb": evidence.MAX_BYTES // (1024 * 1024)}


@bp.app_context_processor
def _site_helpers() -> dict:
    # Every page's footer names the contact address (help and a person to reach).
    return {"contact_email": lambda: runtime.settings().contact_email}


# Statuses during which the appeal page follows the correction by itself.
POLLING_STATUSES = ("approved", "correction_queued", "correcting")


def _uploads(name: str = "evidence") -> list[evidence.Upload]:
    """The request's files, each read up to one byte past the limit (enough to refuse it)."""
    return [
        evidence.Upload(f.filename or "", f.read(evidence.MAX_BYTES + 1))
        for f in request.files.getlist(name)
        if f.filename
    ]


@bp.errorhandler(ServiceError)
def _service_error(error: ServiceError):
    if isinstance(error, Unauthorized):
        return login_manager.unauthorized()
    return render_template("error.html", code=error.status, description=error.message), error.status


@bp.errorhandler(429)
def _too_many(error):
    return render_template("owner/login.html", error=_(TOO_MANY_LOGINS), errors={}, username="",
                           next=""), 429


# --- login and logout -----------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@login_limited("account", error_message=TOO_MANY_LOGINS)
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
    chosen = session.get(languages.SESSION_KEY)
    languages.keep_choice_across(lambda: start_session(account))  # issue 13: a server-side session
    if chosen and chosen != account.language:
        # A language picked on the login page is an explicit choice: the account remembers it.
        accounts.set_language(account, actor_for(account), chosen)
    flash(_("You are logged in as @%(screen_name)s.", screen_name=account.screen_name), "success")
    return redirect(target or url_for("owner.home"))


@bp.post("/logout")
def logout():
    """Log out whoever is logged in (owner, staff or researcher): every session of theirs ends on the server."""
    principal = current_principal()
    if principal is not None:
        auth.end_sessions(principal, actor_for(principal))
    logout_user()
    languages.keep_choice_across(session.clear)
    flash(_("You are logged out."), "success")
    return redirect(url_for("public.index"))


# --- where my account appears --------------------------------------------------------------


@bp.get("/me")
@login_required
def home():
    """Where the account appears, its appeals, and the way to file one; what a finished correction did."""
    principal = current_principal()
    context = filing.overview(principal)
    latest_corrected = next((a for a in context["appeals"] if a["status"] == "corrected"), None)
    corrected = None
    if latest_corrected is not None:
        corrected = filing.appeal_to_owner_dict(filing.get_own_appeal(principal, latest_corrected["id"]))
        corrected["summary"] = outcome.correction_summary(corrected)
    return render_template("owner/home.html", corrected=corrected, **context)


# --- help ----------------------------------------------------------------------------------------


@bp.get("/help")
def help():
    """What happens after filing, how long each step takes, and how to reach a person."""
    settings = runtime.settings()
    return render_template("owner/help.html", sla_days=settings.sla_days,
                           info_request_days=settings.info_request_days,
                           cooldown_days=settings.reappeal_cooldown_days, contact=settings.contact_email)


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
        appeal = filing.file_appeal(principal, actor_for(principal), form, files=_uploads())
    except (Invalid, Conflict) as error:
        status = filing.filing_status(principal)
        return render_template("owner/file.html", form=form, errors=error.fields, error=error.message,
                               **status), error.status
    flash(_("Your appeal #%(id)s has been filed. We sent a confirmation to %(email)s.", id=appeal.id,
            email=appeal.contact_email), "success")
    return redirect(url_for("owner.appeal", appeal_id=appeal.id), 303)


# --- following ---------------------------------------------------------------------------------


def _appeal_page(appeal_id: int, status: int = 200, **extra):
    appeal = filing.appeal_to_owner_dict(filing.get_own_appeal(current_principal(), appeal_id))
    context = {"errors": {}, "reply_body": "", **extra}
    return render_template("owner/appeal.html", appeal=appeal, summary=outcome.correction_summary(appeal),
                           polling=appeal["status"] in POLLING_STATUSES, **context), status


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
        filing.reply(principal, actor_for(principal), appeal_id, body, form_version(request.form),
                     files=_uploads())
    except (Invalid, Conflict) as error:
        return _appeal_page(appeal_id, error.status, errors=error.fields or {"body": error.message}, reply_body=body)
    flash(_("Thank you. Your reply has been sent to the reviewer."), "success")
    return redirect(url_for("owner.appeal", appeal_id=appeal_id), 303)


@bp.post("/appeals/<int:appeal_id>/withdraw")
@login_required
def withdraw(appeal_id: int):
    """Withdraw the appeal, once the owner has ticked the confirmation box."""
    principal = current_principal()
    if request.form.get("confirm") != "yes":
        # Renders through get_own_appeal, so someone else's appeal still answers 404.
        return _appeal_page(appeal_id, 422, errors={"confirm": _("Tick the box to confirm that you want to withdraw.")})
    try:
        filing.withdraw(principal, actor_for(principal), appeal_id, form_version(request.form))
    except (Invalid, Conflict) as error:
        return _appeal_page(appeal_id, error.status, errors={"confirm": error.message})
    flash(_("Your appeal has been withdrawn."), "success")
    return redirect(url_for("owner.appeal", appeal_id=appeal_id), 303)


@bp.get("/appeals/<int:appeal_id>/status.json")
def appeal_status(appeal_id: int):
    """The appeal's current status as JSON, polled by the appeal page while a correction runs."""
    try:
        appeal = filing.appeal_to_owner_dict(filing.get_own_appeal(current_principal(), appeal_id))
    except ServiceError as error:
        return jsonify({"code": error.code, "message": error.message}), error.status
    return jsonify({
        "status": appeal["status"],
        "status_title": appeal["status_title"],
        "status_explanation": appeal["status_explanation"],
        "version": appeal["version"],
        "polling": appeal["status"] in POLLING_STATUSES,
        "final": not appeal["is_open"] or appeal["status"] == "correction_failed",
    })


@bp.get("/appeals/<int:appeal_id>/files/<int:attachment_id>")
@login_required
def attachment(appeal_id: int, attachment_id: int):
    """One evidence file, to its owner only; always a download, never rendered by the browser."""
    return send_attachment(current_principal(), appeal_id, attachment_id)


def send_attachment(principal, appeal_id: int, attachment_id: int):
    """The download response for an evidence file (owner and reviewer pages share it)."""
    found, handle = evidence.open_attachment(principal, appeal_id, attachment_id)
    mimetype = "text/plain; charset=utf-8" if found.media_type == "text/plain" else found.media_type
    response = send_file(handle, mimetype=mimetype, as_attachment=True, download_name=found.filename,
                         max_age=0, conditional=False, etag=False)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
