"""Admin pages for researcher grants: list applications, approve, reject, revoke (admin staff only)."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for

from appeals import requests
from appeals.public import bp
from appeals.services import researchers
from appeals.services.errors import Invalid, ServiceError, Unauthorized
from appeals.web import actor_for, current_principal


def _staff_login_redirect():
    # Staff log in on the reviewer pages; until those exist, a plain 401 page.
    if "reviewer.login" in current_app.view_functions:
        return redirect(url_for("reviewer.login", next=request.path))
    return render_template("error.html", code=401, description="Staff must log in first."), 401


@bp.get("/admin/researchers")
def admin_researchers():
    """Every researcher application and grant, pending first."""
    principal = current_principal()
    try:
        rows = researchers.applications(principal)
    except Unauthorized:
        return _staff_login_redirect()
    return render_template("public/admin_researchers.html", rows=rows, status_of=researchers.access_status)


@bp.post("/admin/researchers/<int:researcher_id>/<any(approve, reject, revoke):decision>")
def admin_decide(researcher_id: int, decision: str):
    """Approve (with an optional expiry date), reject or revoke (each with a reason)."""
    principal = current_principal()
    try:
        if decision == "approve":
            raw = request.form.get("expires_on", "").strip()
            expires_on = requests.day(raw)
            if raw and expires_on is None:
                raise Invalid("Enter the expiry date as YYYY-MM-DD.", fields={"expires_on": "Not a date."})
            researcher = researchers.approve(principal, researcher_id, expires_on, actor_for(principal))
        elif decision == "reject":
            researcher = researchers.reject(principal, researcher_id, request.form.get("reason"), actor_for(principal))
        else:
            researcher = researchers.revoke(principal, researcher_id, request.form.get("reason"), actor_for(principal))
    except Unauthorized:
        return _staff_login_redirect()
    except ServiceError as exc:
        if exc.status in (403, 404):
            raise
        flash(f"{exc.message} {' '.join(exc.fields.values())}".strip(), "error")
        return redirect(url_for("public.admin_researchers") + f"#r-{researcher_id}")
    flash(f"{researcher.name}: {researchers.access_status(researcher)}.", "success")
    return redirect(url_for("public.admin_researchers"))


# --- issue 11: the ledger of standing decisions ------------------------------------------------


@bp.get("/admin/ledger")
def admin_ledger():
    """Every decision of the ledger, newest first (admin staff only)."""
    from appeals.services import corrections

    principal = current_principal()
    try:
        rows = corrections.ledger(actor_for(principal))
    except Unauthorized:
        return _staff_login_redirect()
    return render_template("public/admin_ledger.html", rows=rows)


@bp.post("/admin/ledger/<user_id>/revoke")
def admin_revoke_decision(user_id: str):
    """Revoke an account's standing decision, with a reason; future imports only."""
    from appeals.services import corrections

    principal = current_principal()
    try:
        decision = corrections.revoke_decision(user_id, request.form.get("reason", ""), actor_for(principal))
    except Unauthorized:
        return _staff_login_redirect()
    except ServiceError as exc:
        if exc.status == 403:
            raise
        flash(f"{exc.message} {' '.join(exc.fields.values())}".strip(), "error")
        return redirect(url_for("public.admin_ledger"))
    flash(f"Decision #{decision.id} for account {decision.user_id} is revoked; future imports only.", "success")
    return redirect(url_for("public.admin_ledger"))


@bp.app_template_global()
def own_standing_decision():
    """The signed-in owner's standing decision (remedy, decided_at), or None: for the footprint page."""
    from appeals.services import corrections

    return corrections.own_standing_decision(current_principal())
