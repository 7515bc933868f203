"""Public pages: datasets, release history, gated downloads, signed manifests, researcher access."""

from __future__ import annotations

from datetime import timedelta

from babel import units
from flask import Blueprint, Response, redirect, render_template, request, send_file, session, url_for

from appeals import i18n, languages, runtime
from appeals.extensions import limiter
from appeals.requests import number_problem
from appeals.services import downloads, policy, researchers, signing
from appeals.services.errors import Invalid, ServiceError, Unauthorized
from appeals.limits import download_limited, login_limited
from appeals.sessions import start_session
from appeals.web import current_principal, safe_next

bp = Blueprint("public", __name__, template_folder="templates")


@bp.context_processor
def _helpers() -> dict:
    return {"human_bytes": human_bytes, "timedelta": timedelta}


def human_bytes(n: int) -> str:
    """A file size for people: 1.4 MB rather than 1433562."""
    # Babel's unit names and digits for the page's locale: "1,4 MB", "١٫٤ ميغابايت".
    size = float(n)
    for unit in ("byte", "kilobyte", "megabyte", "gigabyte"):
        if size < 1000 or unit == "gigabyte":
            pattern = "#,##0" if unit == "byte" else "#,##0.0"
            return i18n.digits(units.format_unit(size, f"digital-{unit}", length="long" if unit == "byte" else "short",
                                     format=pattern,
                                     locale=i18n.babel_locale()))
        size /= 1000
    return str(n)


@bp.errorhandler(ServiceError)
def _service_error(error: ServiceError):
    """Service refusals as pages; a withdrawn release points at the current one."""
    if isinstance(error, downloads.ReleaseWithdrawn):
        return render_template("public/gone.html", error=error), 410
    if isinstance(error, Unauthorized):
        return redirect(url_for("public.researcher_login", next=request.path))
    return render_template("error.html", code=error.status, description=error.message), error.status


def _checked(value) -> bool:
    return value in ("on", "yes", "true", "1")


# --- pages about the service and its datasets ---------------------------------------------


@bp.get("/")
def index():
    """What this service is, for account owners and for people who use the datasets."""
    return render_template("public/index.html", datasets=downloads.catalogue())


@bp.get("/datasets")
def datasets():
    """Every published dataset with its current release."""
    return render_template("public/datasets.html", datasets=downloads.catalogue(), downloads=downloads)


@bp.get("/datasets/<name>")
def dataset(name: str):
    """One dataset: its current release, files and history."""
    info, history = downloads.history(name)
    current = downloads.current_release(info)
    return render_template(
        "public/dataset.html", info=info, current=current, history=history,
        disclosed_at=downloads.disclosed_at(info),
    )


@bp.get("/datasets/<name>/releases/<int:version>")
def release(name: str, version: int):
    """One release: counts, what changed, files with digests, signed manifest (410 once withdrawn)."""
    info, found = downloads.release(name, version)
    return render_template(
        "public/release.html", info=info, release=found, changes=downloads.changes(info, found),
    )


@bp.route("/datasets/<name>/download", methods=["GET", "POST"])
@download_limited
def download(name: str):
    """The download gate: an email and the terms, then signed links (by email; on screen in demo)."""
    # A malformed version is refused (422), as the API refuses it, never read as "the current one".
    version, problem = number_problem(request.values.get("version"), text=True)
    info, found = downloads.release(name, version)
    principal = current_principal()
    form = {"email": getattr(principal, "email", "") if principal and principal.kind == "researcher" else ""}
    errors: dict = {"version": i18n.gettext("The release version in the address must be a positive whole number.")
                    } if problem else {}
    if request.method == "POST" and not problem:
        form = {"email": request.form.get("email", ""), "variant": request.form.get("variant", "hashed")}
        try:
            grant = downloads.request_links(
                principal, form["email"], info.name, found.version, form["variant"],
                _checked(request.form.get("accept_terms")), ip=request.remote_addr,
            )
        except Invalid as exc:
            errors = exc.fields
        else:
            return render_template("public/links.html", grant=grant, show_links=bool(grant.links), info=info)
    can_unhashed = policy.can(principal, "dataset.download_unhashed")  # THE policy decides
    status = 422 if errors else 200
    return render_template(
        "public/download.html", info=info, release=found, form=form, errors=errors, can_unhashed=can_unhashed,
    ), status


@bp.get("/files/<name>/<int:version>/<variant>/<filename>")
def file(name: str, version: int, variant: str, filename: str):
    """Stream one release file for a valid link, with Range support; each download is logged."""
    # A HEAD is not a download; whether a Range is a resumed one is decided against the file's length.
    found = downloads.open_file(
        current_principal(), name, version, variant, filename, request.args.get("token"),
        ip=request.remote_addr, record=request.method == "GET", byte_range=request.range,
    )
    if found.redirect_url:  # the object store serves it (Range included), after the gate and the log
        response = redirect(found.redirect_url, code=302)
        response.headers["Cache-Control"] = "private, no-store"
        return response
    response = send_file(
        found.local_path, as_attachment=True, download_name=found.filename, conditional=True, max_age=None,
        mimetype=_mimetype(found.filename),
    )
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _mimetype(filename: str) -> str:
    if filename.endswith(".csv"):
        return "text/csv"
    if filename.endswith(".zip"):
        return "application/zip"
    return "application/octet-stream"


# --- signed manifests ---------------------------------------------------------------------


@bp.get("/datasets/<name>/releases/<int:version>/<any('manifest.json', 'SHA256SUMS'):document>")
def signed_document(name: str, version: int, document: str):
    """manifest.json or SHA256SUMS of a live release: the exact bytes the signature covers."""
    data, _signature = downloads.signed(document, name, version)
    mimetype = "application/json" if document == "manifest.json" else "text/plain"
    return Response(data, mimetype=mimetype, headers=_attachment(f"{name}-v{version}-{document}"))


@bp.get("/datasets/<name>/releases/<int:version>/<any('manifest.json', 'SHA256SUMS'):document>.sig")
def signature(name: str, version: int, document: str):
    """The base64 Ed25519 signature of manifest.json or SHA256SUMS."""
    _data, sig = downloads.signed(document, name, version)
    return Response(sig + "\n", mimetype="text/plain", headers=_attachment(f"{name}-v{version}-{document}.sig"))


def _attachment(filename: str) -> dict:
    return {"Content-Disposition": f'inline; filename="{filename}"', "X-Content-Type-Options": "nosniff"}


@bp.get("/signing-key.pem")
def signing_key():
    """The public key that signs every manifest and SHA256SUMS."""
    return Response(signing.public_key_pem(), mimetype="application/x-pem-file",
                    headers={"Content-Disposition": 'inline; filename="signing-key.pem"'})


@bp.get("/verify")
def verify():
    """How to check a download against the signed SHA256SUMS, with the public key."""
    return render_template(
        "public/verify.html", public_key=signing.public_key_pem().decode("ascii"), fingerprint=signing.fingerprint(),
    )


# --- researchers --------------------------------------------------------------------------


@bp.route("/researchers/apply", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def researcher_apply():
    """Apply for licensed access to the unhashed variant."""
    form: dict = {}
    errors: dict = {}
    if request.method == "POST":
        form = {k: request.form.get(k, "") for k in ("name", "institution", "email", "purpose")}
        try:
            researchers.apply(
                form["name"], form["institution"], form["email"], form["purpose"], request.form.get("password", ""),
                _checked(request.form.get("accept_licence")), ip=request.remote_addr,
                user_agent=request.user_agent.string,
            )
        except Invalid as exc:
            errors = exc.fields
        else:
            return render_template("public/researcher_applied.html", email=form["email"])
    return render_template("public/researcher_apply.html", form=form, errors=errors), 422 if errors else 200


@bp.route("/researchers/login", methods=["GET", "POST"])
@login_limited("researcher")
def researcher_login():
    """Researchers log in with the email and password of their application."""
    error = None
    email = ""
    if request.method == "POST":
        email = request.form.get("email", "")
        try:
            researcher = researchers.authenticate(email, request.form.get("password", ""))
        except Unauthorized as exc:
            error = exc.message
        else:
            # A fresh, server-checked session at each login (but the language stays).
            languages.keep_choice_across(lambda: start_session(researcher))
            return redirect(safe_next(request.args.get("next")) or url_for("public.researcher_home"))
    return render_template("public/researcher_login.html", email=email, error=error), 401 if error else 200


@bp.get("/researchers/me")
def researcher_home():
    """A researcher's grant: its status, its expiry, and the datasets they may download."""
    principal = current_principal()
    if principal is None or principal.kind != "researcher":
        return redirect(url_for("public.researcher_login", next=request.path))
    return render_template(
        "public/researcher_home.html", researcher=principal, status=researchers.access_status(principal),
        datasets=downloads.catalogue(),
    )


from appeals.public import admin  # noqa: E402,F401  (registers the admin routes on bp)
