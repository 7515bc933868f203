"""The application factory; reads as a table of contents of the web application."""

from __future__ import annotations

import logging

from flask import Flask, render_template, request

from appeals import db, runtime
from appeals.extensions import csrf, limiter, login_manager
from appeals.i18n import N_, gettext, lazy_gettext
from config import Settings


def create_app(settings: Settings | None = None, **overrides) -> Flask:
    """Build the web application for `settings` (default: read from the environment)."""
    settings = settings or Settings.from_env(**overrides)
    runtime.bootstrap(settings)

    app = Flask(__name__, instance_path=str(settings.home))
    configure(app, settings)
    register_extensions(app, settings)
    register_i18n(app)
    register_converters(app)
    register_blueprints(app)
    register_error_pages(app)
    register_schema_guard(app)
    register_security(app, settings)
    register_read_only_sessions(app)
    app.teardown_appcontext(lambda _exc: db.session.remove())
    return app


def register_read_only_sessions(app: Flask) -> None:
    """Read-only API GETs start their session in autocommit (db.begin_read_only), before the bearer check."""
    from appeals.api.review import READ_ONLY_ENDPOINTS

    @app.before_request
    def _read_only_session():
        if request.method in ("GET", "HEAD") and request.endpoint in READ_ONLY_ENDPOINTS:
            db.begin_read_only()


def configure(app: Flask, settings: Settings) -> None:
    """Flask's own settings, derived from ours."""
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        TESTING=settings.mode == "test",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        SESSION_COOKIE_NAME="__Host-session" if settings.public_url.startswith("https://") else "session",
        REMEMBER_COOKIE_HTTPONLY=True,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,
        RATELIMIT_HEADERS_ENABLED=True,
    )
    # issue 15: only the forms that take evidence files accept large bodies; registered before CSRF
    # protection so its reading of the form already obeys the limit.
    from appeals.services.evidence import MAX_REQUEST_BYTES, UPLOAD_ENDPOINTS

    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES

    @app.before_request
    def _body_limit():
        if request.endpoint not in UPLOAD_ENDPOINTS:
            request.max_content_length = 2 * 1024 * 1024

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def register_extensions(app: Flask, settings: Settings) -> None:
    """Bind the unbound extensions of appeals.extensions."""
    from appeals.sessions import load_user
    from workers.connection import limiter_storage_uri

    app.config["RATELIMIT_STORAGE_URI"] = limiter_storage_uri(settings)
    # Fail fast when Redis is away: logins then answer 503 (see register_security), never hang.
    app.config["RATELIMIT_STORAGE_OPTIONS"] = {"socket_connect_timeout": 2, "socket_timeout": 2}
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    # Sessions are checked on the server (appeals.sessions); Flask-Login's "strong" mode hashed a
    # client-supplied X-Forwarded-For header and protected nothing.
    login_manager.session_protection = None
    login_manager.login_view = "owner.login"
    login_manager.login_message = N_("Please log in to continue.")
    login_manager.localize_callback = gettext  # the flash is stored in the session: a plain, translated str
    login_manager.user_loader(load_user)


def register_i18n(app: Flask) -> None:
    """Languages (issue 16): Flask-Babel, the request's locale, the switcher; see appeals.languages."""
    from appeals import languages

    languages.init_app(app)


def register_blueprints(app: Flask) -> None:
    """One blueprint per area: owners, the public, the API, reviewers."""
    from appeals.api import bp as api_bp
    from appeals.owner import bp as owner_bp
    from appeals.public import bp as public_bp
    from reviewer_ui import bp as reviewer_bp

    app.register_blueprint(public_bp)
    app.register_blueprint(owner_bp)
    app.register_blueprint(reviewer_bp, url_prefix="/review")
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    csrf.exempt(api_bp)  # the API authenticates with bearer tokens, never with cookies


HTTP_DESCRIPTIONS = {
    400: lazy_gettext("The request could not be understood. Go back and try again."),
    403: lazy_gettext("You are not allowed to see this page."),
    404: lazy_gettext("There is no page at this address. Check the link, or start from the home page."),
    405: lazy_gettext("This page cannot be used that way. Go back and try again."),
    410: lazy_gettext("This is no longer available."),
    413: lazy_gettext("What you sent is too large."),
    429: lazy_gettext("Too many attempts. Wait a minute and try again."),
    500: lazy_gettext("Something went wrong on our side. Please try again later."),
}


def register_error_pages(app: Flask) -> None:
    """Plain, friendly pages for HTTP errors outside the API."""

    def render_error(error):
        from appeals.security import api_error, is_api_request

        if is_api_request():
            return api_error(error)  # issue 13: every API status answers JSON {code, message}
        code = getattr(error, "code", 500) or 500
        description = getattr(error, "description", None)
        if not description or description == getattr(type(error), "description", None):
            # Werkzeug's stock descriptions are English: say it in the visitor's language instead.
            description = HTTP_DESCRIPTIONS.get(code, HTTP_DESCRIPTIONS[500])
        return render_template("error.html", code=code, description=description), code

    for code in (400, 403, 404, 405, 410, 413, 429, 500):
        app.register_error_handler(code, render_error)


# --- issue 13: security (proxies, headers, caching, hostile input, errors on the API) ----------


def register_converters(app: Flask) -> None:
    """URL ids are bounded to the SQL INTEGER range: a larger one matches no route (404), never a database error."""
    from appeals.security import BoundedInt

    app.url_map.converters["int"] = BoundedInt


def register_security(app: Flask, settings: Settings) -> None:
    """Trusted proxies, security headers, no-store on private pages, hostile input and JSON API errors."""
    from appeals.security import install

    install(app, settings)


def register_schema_guard(app: Flask) -> None:
    """Until the database is at the migration head, every request gets a 503 naming `appeals db upgrade`.

    Checked per request until it passes once, so an upgrade run meanwhile needs no restart.
    """
    from flask import request

    from appeals import schema

    state = {"ok": False}

    @app.before_request
    def _require_current_schema():
        if state["ok"]:
            return None
        try:
            schema.check(db.make_engine(runtime.settings().database_url))
        except schema.SchemaOutdated as exc:
            message = f"The service is not ready: {exc}"
            if request.path.startswith("/api/"):
                from appeals.api import error_response

                return error_response(503, "schema_outdated", message)
            return render_template("error.html", code=503, description=message), 503
        state["ok"] = True
        return None
