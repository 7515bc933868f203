"""Web security hooks (issue 13): trusted proxies, security headers, no-store on private pages,
hostile input refused before any view runs, and JSON errors for every status on the API."""

from __future__ import annotations

import logging

from flask import Flask, g, render_template, request
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError, ServiceUnavailable
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from config import Settings
from appeals.requests import NUMBER_MAX

log = logging.getLogger(__name__)

# No inline script anywhere: scripts come from /static only. Inline style attributes are still
# used by templates; styles cannot run code, so 'unsafe-inline' is confined to style-src.
CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
PRIVATE_BLUEPRINTS = ("owner", "reviewer", "api")
MAX_PARAMETER = 100_000  # characters in one form or query value


class BoundedInt(IntegerConverter):
    """Flask's `int` converter limited to what the SQL INTEGER columns of ids and versions hold
    (requests.NUMBER_MAX); ASCII digits only."""

    def __init__(self, map, *args, **kwargs):  # noqa: A002  (werkzeug's parameter name)
        kwargs.setdefault("max", NUMBER_MAX)
        super().__init__(map, *args, **kwargs)


def install(app: Flask, settings: Settings) -> None:
    """Wire every hook of this module into `app`."""
    if settings.trusted_proxies > 0:
        n = settings.trusted_proxies
        # Only this many hops of X-Forwarded-* are believed; a client cannot add its own.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)
    hsts = settings.mode == "production" and settings.public_url.startswith("https://")

    @app.before_request
    def _refuse_hostile_input():
        sources = [request.args] + ([request.form] if request.mimetype != "application/json" else [])
        pairs = [pair for values in sources for pair in values.items(multi=True)]
        pairs += list((request.view_args or {}).items())
        for key, value in pairs:
            if not text_is_acceptable(key) or not text_is_acceptable(value):
                    raise BadRequest("A parameter holds characters that are not accepted (NUL, a lone surrogate, "
                                     "or more than 100,000 characters).")

    @app.after_request
    def _security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        # Download links carry their token in the URL: never leak a URL to another site.
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if hsts:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if _is_private() and "no-store" not in headers.get("Cache-Control", ""):
            headers["Cache-Control"] = "no-store"
            headers["Pragma"] = "no-cache"
        return response

    # The codes app.register_error_pages renders already go JSON on the API there; these are the rest.
    for code in (401, 409, 415, 422, 503):
        app.register_error_handler(code, _error)
    app.register_error_handler(HTTPException, _error)
    _register_redis_handler(app)


def text_is_acceptable(value) -> bool:
    """False for text no page or API field accepts: NUL, lone surrogates, or absurd length."""
    if not isinstance(value, str):
        return True
    if len(value) > MAX_PARAMETER or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_private() -> bool:
    if request.blueprint in PRIVATE_BLUEPRINTS:
        return True
    if getattr(g, "api_principal", None) is not None:
        return True
    from flask_login import current_user

    try:
        return bool(current_user and current_user.is_authenticated)
    except Exception:  # noqa: BLE001  a broken session must not turn a page into a 500
        return False


def is_api_request() -> bool:
    """True for requests to the JSON API, whose every answer is JSON."""
    return request.path.startswith("/api/")


def api_error(error):
    """Any error as the API's JSON {code, message}."""
    from appeals.api import http_error_response

    if not isinstance(error, HTTPException):
        error = InternalServerError(original_exception=error)
    return http_error_response(error)


def _error(error):
    if not isinstance(error, HTTPException):
        error = InternalServerError(original_exception=error)
    if is_api_request():
        return api_error(error)
    code = error.code or 500
    description = error.description or "Something went wrong."
    response = render_template("error.html", code=code, description=description), code
    return response


def _register_redis_handler(app: Flask) -> None:
    import redis

    def unavailable(error):
        # Redis (rate limits, queues) is away: say so, retry later; never a 500.
        log.warning("Redis unavailable: %s", error)
        return _error(ServiceUnavailable("The service is briefly unavailable. Please try again in a minute."))

    app.register_error_handler(redis.exceptions.RedisError, unavailable)
