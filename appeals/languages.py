"""Flask side of languages: Flask-Babel, the request's locale, <html lang dir>, the language switcher.

The order is THE rule of issue 16: the choice stored on the account, then the choice an
anonymous visitor made (kept in the session), then Accept-Language, then English.
Reviewers' pages stay English.
"""

from __future__ import annotations

from babel.support import LazyProxy
from flask import Blueprint, Flask, redirect, request, session, url_for
from flask.json.provider import DefaultJSONProvider
from flask_babel import Babel, refresh

from appeals import i18n

bp = Blueprint("language", __name__)
SESSION_KEY = "language"


def init_app(app: Flask) -> None:
    """Bind Flask-Babel to the package's catalogues and make `select_locale` the one resolver."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(i18n.TRANSLATIONS_DIR))
    app.config.setdefault("BABEL_DEFAULT_LOCALE", i18n.DEFAULT)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "UTC")
    Babel(app, locale_selector=select_locale)
    # {% trans %} blocks keep their words, not the template's line breaks (babel.cfg extracts them trimmed too).
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    i18n.set_resolver(_resolve_in_request)
    app.json = JSONProvider(app)
    app.register_blueprint(bp)
    app.context_processor(_template_context)
    app.jinja_env.filters["number"] = lambda value: i18n.format_number(value)


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with lazily translated strings written out in the request's language."""

    @staticmethod
    def default(o):
        if isinstance(o, LazyProxy):
            return str(o)
        return DefaultJSONProvider.default(o)


def _resolve_in_request() -> str | None:
    from flask import has_request_context

    return select_locale() if has_request_context() else None


def staff_area() -> bool:
    """True on pages and API calls that only staff use: those stay English."""
    from appeals.web import current_principal

    if request.blueprint == "reviewer" or request.path.startswith("/review"):
        return True
    principal = current_principal()
    return principal is not None and principal.kind == "staff"


def select_locale() -> str:
    """The request's language: stored on the account, then the session's choice, then the header, then English."""
    from appeals.web import current_principal

    if staff_area():
        return i18n.DEFAULT
    principal = current_principal()
    stored = i18n.normalize(getattr(principal, "language", None)) if principal is not None else None
    if stored:
        return stored
    chosen = i18n.normalize(session.get(SESSION_KEY))
    if chosen:
        return chosen
    return from_header() or i18n.DEFAULT


def from_header() -> str | None:
    """The best shipped language the Accept-Language header asks for, by the client's order of preference."""
    for value, quality in request.accept_languages:
        if quality > 0 and value != "*":
            code = i18n.normalize(value)
            if code:
                return code
    return None


def _template_context() -> dict:
    code = select_locale()
    return {
        "page_lang": i18n.html_lang(code),
        "page_dir": i18n.direction(code),
        "page_locale": code,
        "languages": [(key, name, i18n.html_lang(key)) for key, (name, _dir) in i18n.LANGUAGES.items()],
        "show_language_switcher": not staff_area(),
        "when": i18n.when,
        "language_label": i18n.label,
    }


@bp.post("/language")
def choose():
    """Remember the visitor's language (on the account when logged in) and go back where they were."""
    from appeals.services import accounts
    from appeals.web import actor_for, current_principal, safe_next

    code = i18n.normalize(request.form.get("language"))
    target = safe_next(request.form.get("next")) or url_for("public.index")
    if code is None:
        return redirect(target, 303)
    session[SESSION_KEY] = code
    principal = current_principal()
    if principal is not None and principal.kind == "account":
        accounts.set_language(principal, actor_for(principal), code)
    refresh()
    return redirect(target, 303)


def keep_choice_across(clear) -> None:
    """Call `clear` (session.clear at login/logout) and keep the visitor's language choice."""
    chosen = session.get(SESSION_KEY)
    clear()
    if chosen:
        session[SESSION_KEY] = chosen
