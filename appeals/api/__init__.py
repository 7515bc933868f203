"""The JSON API under /api/v1: bearer-token auth, JSON errors, and the OpenAPI document.

Each area adds its routes in its own module (tokens, owner, review, datasets, reference);
the OpenAPI document is built in one place, the package appeals/api/spec (one module per area).
"""

from __future__ import annotations

import json

from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import HTTPException

from appeals.i18n import gettext as _
from appeals.security import text_is_acceptable
from appeals.services.errors import ServiceError, Unauthorized

bp = Blueprint("api", __name__)


@bp.before_request
def _load_bearer() -> None:
    from appeals.services.auth import resolve_token

    g.api_principal = g.api_token = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        g.api_token = header[len("Bearer "):].strip()
        g.api_principal = resolve_token(g.api_token)


def require_principal():
    """The bearer token's principal; 401 without a valid token."""
    principal = getattr(g, "api_principal", None)
    if principal is None:
        raise Unauthorized(_("A valid bearer token is required (POST /api/v1/tokens)."), code="unauthorized")
    return principal


def json_body() -> dict:
    """The request's JSON object, or a 422 naming the problem."""
    from appeals.services.errors import Invalid

    try:
        data = json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, RecursionError):  # deep nesting is refused like any malformed body
        data = None
    if not isinstance(data, dict):
        raise Invalid(_("The request body must be a JSON object."), code="invalid_json")
    # The fields the API reads are the top-level ones; anything nested or unknown is never used.
    bad = sorted(k for k, v in data.items() if text_is_acceptable(k) and not text_is_acceptable(v))
    if bad:
        raise Invalid("Some fields hold text that is not accepted (NUL, a lone surrogate, or an overlong string).",
                      code="invalid_text", fields={k: "Text with NUL or a lone surrogate is not accepted." for k in bad})
    return {k: v for k, v in data.items() if text_is_acceptable(k)}


def optional_json_body() -> dict:
    """The request's JSON object when a body is sent; {} without one (claim, release, withdraw...)."""
    return json_body() if request.get_data(cache=True) else {}


def string_fields(data: dict, names: tuple[str, ...]) -> dict:
    """`names` of a JSON body (None when absent); a 422 naming every one given but not a string."""
    from appeals.services.errors import Invalid

    wrong = {k: "Must be a string." for k in names if data.get(k) is not None and not isinstance(data[k], str)}
    if wrong:
        raise Invalid(_("Please correct the request."), fields=wrong)
    return {k: data.get(k) for k in names}


def error_response(status: int, code: str, message: str, fields: dict | None = None):
    """The one shape of every API error: {"code", "message", "fields"?}."""
    body = {"code": code, "message": str(message)}
    if fields:
        body["fields"] = fields
    return jsonify(body), status


@bp.errorhandler(ServiceError)
def _service_error(error: ServiceError):
    return error_response(error.status, error.code, error.message, error.fields)


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    return http_error_response(error)


def http_error_response(error: HTTPException):
    """An HTTP error (405, 413, 429...) in the API's JSON shape; app.py uses it for every /api/ path."""
    from appeals.app import HTTP_DESCRIPTIONS

    code = (error.name or "error").lower().replace(" ", "_").replace("'", "")
    message = error.description or error.name
    if message == getattr(type(error), "description", None):
        # Werkzeug's stock text is English; the code stays, the message follows the negotiated language.
        message = HTTP_DESCRIPTIONS.get(error.code or 500, message)
    response, status = error_response(error.code or 500, code, str(message))
    if error.code == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    retry = error.get_response().headers.get("Retry-After") if error.code in (429, 503) else None
    if retry:
        response.headers["Retry-After"] = retry
    return response, status


# Route modules register themselves on `bp` when imported.
from appeals.api import datasets, openapi, owner, reference, review, tokens  # noqa: E402,F401
