"""The reviewer pages: staff login, queue, appeal page, decisions, audit, dashboard, admin."""

from __future__ import annotations

import hashlib
import time

from flask import current_app, flash, redirect, render_template, request, session, url_for
from markupsafe import Markup

from appeals.db import utcnow
from appeals.i18n import current_locale
from appeals.limits import login_limited
from appeals.requests import form_version, number
from appeals.services import activity, appeal_neighbours, audit_query, auth, policy, queue as queue_service, queue_marks, reference, \
    review, staff as staff_service
from appeals.status import STATUS_TEXT, title
from appeals.services.errors import Conflict, Invalid, NotFound, ServiceError, Unauthorized
from appeals.sessions import start_session
from appeals.web import actor_for, current_principal, safe_next
from reviewer_ui import bp

LOGIN_STEP_SECONDS = 300  # the code must follow the password within five minutes


# --- errors and small parsing helpers --------------------------------------------------------


@bp.errorhandler(ServiceError)
def _service_error(error: ServiceError):
    if isinstance(error, Unauthorized):
        return redirect(url_for("reviewer.login", next=request.full_path if request.method == "GET" else None))
    return render_template("error.html", code=error.status, description=error.message), error.status


@bp.app_template_filter("review_age")
def _age(moment) -> str:
    """A short age like '3d' or '5h' for a naive-UTC timestamp."""
    seconds = max(0, int((utcnow() - moment).total_seconds()))
    if seconds >= 86400:
        return f"{seconds // 86400}d"
    if seconds >= 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


@bp.context_processor
def _helpers() -> dict:
    principal = current_principal()
    return {
        "status_title": lambda status: title(status) if status in STATUS_TEXT else status,
        "staff_can": lambda action: policy.can(principal, action),
        "t_missing": reference.missing_languages,  # issue 16: templates not yet in a language
        "template_body": reference.body_in,
        "translated_languages": reference.TRANSLATED_LANGUAGES,
    }


def _version() -> int | None:
    return form_version(request.form)


# --- login -----------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@login_limited("staff")
def login():
    """Staff login, step one: email and password (the one staff login service, `auth.staff_login`)."""
    next_url = request.values.get("next")
    if request.method == "GET":
        return render_template("reviewer/login.html", email="", next=next_url)
    email = request.form.get("email", "")
    try:
        step = auth.staff_login(actor_for(None), email=email, password=request.form.get("password", ""))
    except Unauthorized:
        flash("That email and password do not match an active staff account.", "error")
        return render_template("reviewer/login.html", email=email, next=next_url), 401
    session.clear()  # a fresh session for the new identity
    next_page = safe_next(next_url, "/review") or url_for("reviewer.queue")
    session["staff_login"] = {"id": step.staff.id, "at": time.time(), "next": next_page}
    return redirect(url_for("reviewer.login_code"), 303)


@bp.route("/login/code", methods=["GET", "POST"])
@login_limited("staff")
def login_code():
    """Staff login, step two: the TOTP code, or enrolment (QR code and secret) the first time."""
    pending = session.get("staff_login")
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > LOGIN_STEP_SECONDS:
        session.pop("staff_login", None)
        flash("Please start again with your email and password.", "error")
        return redirect(url_for("reviewer.login"), 303)
    status = 200
    if request.method == "POST":
        try:
            step = auth.staff_login(actor_for(None), pending_id=pending["id"], code=request.form.get("code", ""))
        except Unauthorized:
            flash("That code is not valid. Enter the current 6-digit code from your authenticator app.", "error")
            status = 401
        else:
            start_session(step.staff)
            flash("You are logged in.", "success")
            return redirect(pending["next"], 303)
    enrolment = staff_service.enrolment(pending["id"])
    if enrolment is None:
        session.pop("staff_login", None)
        return redirect(url_for("reviewer.login"), 303)
    return render_template("reviewer/login_code.html", **enrolment), status


@bp.route("/invitations/<token>", methods=["GET", "POST"])
@login_limited("staff")
def invitation(token: str):
    """A new member's one-time invitation: they choose their password and enrol their authenticator."""
    enrolment = staff_service.invitation_enrolment(token)
    if enrolment is None:
        return render_template("error.html", code=404,
                               description="This invitation link is not valid any more; ask an admin for a new one."), 404
    errors, status = {}, 200
    if request.method == "POST":
        try:
            member = staff_service.accept_invitation(token, request.form.get("password", ""),
                                                     request.form.get("code", ""), actor_for(None))
        except (Invalid, Conflict) as error:
            flash(error.message, "error")
            errors, status = error.fields, error.status
        else:
            start_session(member)
            flash("Welcome. Your password and authenticator are set; you are logged in.", "success")
            return redirect(url_for("reviewer.queue"), 303)
    return render_template("reviewer/invitation.html", errors=errors, token=token, **enrolment), status


# --- the queue -------------------------------------------------------------------------------


@bp.get("/")
def queue():
    """The review queue: filters, sorting, pages, counts per status; overdue appeals stand out."""
    principal = current_principal()
    page = queue_service.list_queue(principal, queue_service.parse_filters(request.args))
    return render_template("reviewer/queue.html", page=page, f=page.filters, describe=queue_service.describe,
                           marks=queue_marks.markers([a.id for a in page.items]),
                           reason_short=queue_marks.REASON_SHORT)


@bp.post("/claim-next")
def claim_next():
    """Claim the oldest unclaimed appeal and open it."""
    principal = current_principal()
    appeal = review.claim_next(principal, actor_for(principal))
    if appeal is None:
        flash("Nothing is waiting to be claimed.", "success")
        return redirect(url_for("reviewer.queue"), 303)
    flash(f"You claimed appeal #{appeal.id}.", "success")
    return redirect(url_for("reviewer.appeal", appeal_id=appeal.id), 303)


# --- the appeal page and its actions ---------------------------------------------------------


@bp.get("/appeals/<int:appeal_id>")
def appeal(appeal_id: int):
    """The appeal: statement, evidence, footprint, samples, timeline, notes, and the actions allowed."""
    return _render_appeal(appeal_id)


def _render_appeal(appeal_id: int, status: int = 200, errors: dict | None = None):
    principal = current_principal()
    data = review.appeal_page(principal, appeal_id)
    form = {k: v for k, v in request.form.items() if k != "csrf_token"} if request.method == "POST" else {}
    # Without script, ?template=ID&target=statement|message fills the matching textarea (with script,
    # static/js/reviewer.js inserts the same filled text in place, keeping everything typed).
    chosen = request.args.get("template", "")
    target = request.args.get("target") if request.args.get("target") in ("statement", "message") else "statement"
    # Issue 16: each template in the owner's language (English, marked, when it has no translation).
    filled = {t.id: reference.choose(t, data["appeal"]) for t in data["templates"]}
    choice = None
    for template in data["templates"]:
        if chosen == str(template.id):
            choice = filled[template.id]
            form.setdefault(target, choice.body)
            form.setdefault("action", request.args.get("action", ""))
    work = activity.workspace(principal, appeal_id, request.args, draw=_draw_chart, draw_key=_chart_version())
    previous_id, next_id = appeal_neighbours.neighbours(principal, appeal_id)
    return render_template("reviewer/appeal.html", form=form, errors=errors or {}, target=target, now=utcnow(),
                           filled=filled, work=work, template_choice=choice, previous_id=previous_id, next_id=next_id,
                           reason_short=queue_marks.REASON_SHORT, **data), status


CHART_TEMPLATE = "reviewer/_activity.html"


def _draw_chart(chart: dict, window) -> Markup:
    """The activity chart drawn by its template macro (SVG and tables), as markup."""
    return Markup(current_app.jinja_env.get_template(CHART_TEMPLATE).module.activity(chart, window))


_chart_versions: dict[str, str] = {}  # locale -> version: templates do not change under a running process


def _chart_version() -> str:
    """Names the chart's drawing: a changed template (or locale) is drawn anew, never read from an old copy.

    Read and hashed once per process and locale; again on every view only where templates reload
    (debug), since there the template may change under the running process."""
    locale = str(current_locale())
    found = _chart_versions.get(locale)
    if found is None or current_app.jinja_env.auto_reload:
        source = current_app.jinja_env.loader.get_source(current_app.jinja_env, CHART_TEMPLATE)[0]
        found = _chart_versions[locale] = hashlib.sha256(f"{source}|{locale}".encode()).hexdigest()[:16]
    return found


def _act(appeal_id: int, action, success: str, to_queue: bool = False):
    """Run one service action; on a refusal show the page again with the typed text kept, errors by their fields."""
    try:
        action()
    except (Invalid, Conflict) as error:
        return _render_appeal(appeal_id, error.status, error.fields or {"form": error.message})
    flash(success, "success")
    return redirect(url_for("reviewer.queue") if to_queue else url_for("reviewer.appeal", appeal_id=appeal_id), 303)


@bp.get("/appeals/<int:appeal_id>/files/<int:attachment_id>")
def attachment(appeal_id: int, attachment_id: int):
    """One of the owner's evidence files, as a download (reviewers only; anyone else gets 404)."""
    from appeals.owner.views import send_attachment

    principal = current_principal()
    if principal is None:
        raise Unauthorized("Please log in.")
    return send_attachment(principal, appeal_id, attachment_id)


@bp.post("/appeals/<int:appeal_id>/claim")
def claim(appeal_id: int):
    """Claim this appeal."""
    principal = current_principal()
    return _act(appeal_id, lambda: review.claim(principal, appeal_id, actor_for(principal), _version()),
                "You hold this appeal now. Other reviewers cannot act on it.")


@bp.post("/appeals/<int:appeal_id>/release")
def release(appeal_id: int):
    """Release the claim on this appeal."""
    principal = current_principal()
    return _act(appeal_id, lambda: review.release(principal, appeal_id, actor_for(principal), _version()),
                f"Appeal #{appeal_id} is back in the queue.", to_queue=True)


DECISION_DONE = {
    "approve": "Approved. A senior reviewer must confirm before the published data changes.",
    "deny": "Denied. The owner has been told, with the statement of reasons.",
    "request_info": "Information requested. The appeal returns to the queue when the owner replies.",
    "escalate": "Escalated to the senior reviewers.",
}


@bp.post("/appeals/<int:appeal_id>/decision")
def decision(appeal_id: int):
    """Approve, deny, request information or escalate."""
    principal = current_principal()
    form = request.form
    action = form.get("action", "")
    return _act(appeal_id, lambda: review.decide(
        principal, appeal_id, actor_for(principal), action, remedy=form.get("remedy") or None,
        reason_code=form.get("reason_code") or None, statement=form.get("statement", ""),
        expected_version=_version(),
    ), DECISION_DONE.get(action, "Done."))


@bp.post("/appeals/<int:appeal_id>/confirm")
def confirm(appeal_id: int):
    """Confirm an approval (a senior other than the approver)."""
    principal = current_principal()
    from appeals import db
    from appeals.models import Appeal
    from appeals.services import policy

    found = db.session.get(Appeal, appeal_id)
    allowed = found is not None and policy.can(principal, "appeal.confirm", found)
    if allowed and request.form.get("confirm_changes") != "yes":
        # The deliberate second step: the senior ticks that they checked exactly what will change.
        return _render_appeal(appeal_id, 422, {"confirm_changes": "Tick the box to say you checked what will change."})
    return _act(appeal_id, lambda: review.confirm(principal, appeal_id, actor_for(principal), _version()),
                "Confirmed. The correction of the published data is queued.")


@bp.post("/appeals/<int:appeal_id>/send-back")
def send_back(appeal_id: int):
    """Return an approval to review instead of confirming it."""
    principal = current_principal()
    return _act(appeal_id, lambda: review.send_back(principal, appeal_id, actor_for(principal),
                                                    request.form.get("reason", ""), _version()),
                "Sent back to review.")


@bp.post("/appeals/<int:appeal_id>/notes")
def add_note(appeal_id: int):
    """Add an internal note."""
    principal = current_principal()
    return _act(appeal_id, lambda: review.add_note(principal, appeal_id, actor_for(principal),
                                                   request.form.get("note", "")),
                "Note added. Only staff can read it.")


@bp.post("/appeals/<int:appeal_id>/messages")
def send_message(appeal_id: int):
    """Write to the owner."""
    principal = current_principal()
    return _act(appeal_id, lambda: review.send_message(principal, appeal_id, actor_for(principal),
                                                       request.form.get("message", ""), _version()),
                "Message sent to the owner.")


# --- dashboard and audit ---------------------------------------------------------------------


@bp.get("/dashboard")
def dashboard():
    """Queue depth, time to decision, approval rate, overdue count and corrections."""
    principal = current_principal()
    return render_template("reviewer/dashboard.html", d=queue_service.dashboard(principal),
                           new_staff_confirmations=staff_service.new_staff_confirmations(principal))


@bp.post("/corrections/<int:correction_id>/retry")
def retry_correction(correction_id: int):
    """Admin: retry a failed correction."""
    principal = current_principal()
    try:
        queue_service.retry_correction(principal, correction_id, actor_for(principal))
    except (Conflict, NotFound) as error:
        flash(error.message, "error")
    else:
        flash(f"Correction #{correction_id} is queued again.", "success")
    return redirect(url_for("reviewer.dashboard"), 303)


@bp.get("/audit")
def audit():
    """The audit log, filtered."""
    filters = audit_query.parse_filters(request.args)
    result = audit_query.search(current_principal(), filters)
    return render_template("reviewer/audit.html", f=filters, **result)


# --- admin: staff and reference data --------------------------------------------------------


@bp.route("/staff", methods=["GET", "POST"])
def staff():
    """Admins list staff, invite new members, disable and re-enrol them."""
    principal = current_principal()
    errors, form, status = {}, {}, 200
    if request.method == "POST":
        form = request.form
        try:
            invitation = staff_service.invite(principal, actor_for(principal), form.get("email", ""),
                                              form.get("role", ""))
        except Invalid as error:
            flash(error.message, "error")
            errors, status = error.fields, 422
        else:
            if invitation.status == "awaiting_confirmation":
                flash(f"Invitation for {invitation.email} ({invitation.role}) recorded. Another admin must "
                      "confirm it before it is sent.", "success")
            else:
                flash(f"Invitation sent to {invitation.email}. They choose their own password and enrol "
                      "their authenticator from the link in that email.", "success")
            return redirect(url_for("reviewer.staff"), 303)
    members = staff_service.list_staff(principal)
    return render_template("reviewer/staff.html", members=members, errors=errors, form=form,
                           enrolled=staff_service.is_enrolled,
                           invitations=staff_service.open_invitations(principal)), status


@bp.post("/staff/invitations/<int:invitation_id>/confirm")
def staff_invitation_confirm(invitation_id: int):
    """A second admin confirms a senior or admin invitation."""
    principal = current_principal()
    try:
        invitation = staff_service.confirm_invitation(principal, actor_for(principal), invitation_id)
    except Conflict as error:
        flash(error.message, "error")
    else:
        flash(f"Confirmed: the invitation to {invitation.email} is sent.", "success")
    return redirect(url_for("reviewer.staff"), 303)


@bp.post("/staff/invitations/<int:invitation_id>/cancel")
def staff_invitation_cancel(invitation_id: int):
    """Withdraw an unused invitation."""
    principal = current_principal()
    try:
        invitation = staff_service.cancel_invitation(principal, actor_for(principal), invitation_id)
    except Conflict as error:
        flash(error.message, "error")
    else:
        flash(f"The invitation to {invitation.email} is cancelled.", "success")
    return redirect(url_for("reviewer.staff"), 303)


@bp.post("/staff/<int:staff_id>/active")
def staff_active(staff_id: int):
    """Enable or disable a staff member."""
    principal = current_principal()
    active = request.form.get("active") == "1"
    member = staff_service.set_active(principal, actor_for(principal), staff_id, active)
    flash(f"{member.email} is now {'enabled' if active else 'disabled'}.", "success")
    return redirect(url_for("reviewer.staff"), 303)


@bp.post("/staff/<int:staff_id>/reset-totp")
def staff_reset_totp(staff_id: int):
    """Give a staff member a new TOTP secret; they enrol again."""
    principal = current_principal()
    member = staff_service.reset_totp(principal, actor_for(principal), staff_id)
    flash(f"{member.email} will enrol a new authenticator at their next login.", "success")
    return redirect(url_for("reviewer.staff"), 303)


@bp.route("/reference", methods=["GET", "POST"])
def reference_data():
    """Admins manage reason codes and message templates."""
    principal = current_principal()
    errors, form, status = {}, {}, 200
    if request.method == "POST":
        form = request.form
        try:
            if form.get("kind") == "code":
                reference.save_reason_code(principal, actor_for(principal), form.get("code", ""),
                                           form.get("label", ""), form.get("applies_to", ""),
                                           form.get("active") == "1")
            else:
                # Blank: a new template. A malformed id is a 422, no longer read as "a new one".
                template_id = number(form.get("template_id"), "template_id", text=True)
                reference.save_template(principal, actor_for(principal), form.get("name", ""),
                                        form.get("body", ""), form.get("active") == "1", template_id,
                                        {code: form[f"body_{code}"] for code in reference.TRANSLATED_LANGUAGES
                                         if f"body_{code}" in form})
        except Invalid as error:
            flash(error.message, "error")
            errors, status = error.fields, 422
        else:
            flash("Saved.", "success")
            return redirect(url_for("reviewer.reference_data"), 303)
    data = reference.manage_view(principal)
    return render_template("reviewer/reference.html", errors=errors, form=form, **data), status
