"""Rate limits (Flask side): the login limits' keys and the one decorator every login route
wears, and the download gate's limits, one decorator for the page and the API.

Each attempt is counted BEFORE the credentials are checked (an atomic INCR in Redis, through
Flask-Limiter's storage), so a burst of parallel attempts cannot overrun a limit; a
successful login gives its units back. The
subject of a limit is the principal the login name resolves to (`auth.login_subject`),
so no spelling of a name escapes its account's limit. Three limits apply:

- per client address: `APPEALS_LOGIN_RATE_LIMIT`;
- per account and client address: `APPEALS_LOGIN_RATE_LIMIT`, so one address cannot guess at one account;
- per account from every address together: `APPEALS_LOGIN_ACCOUNT_RATE_LIMIT` (default 50 per hour),
  much looser, so a stranger with a handful of wrong passwords cannot lock an owner out,
  while a distributed guesser is still slowed to a crawl.
"""

from __future__ import annotations

import functools
import hashlib
import json

from flask import make_response, request, session
from limits import RateLimitItem, parse_many
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

from appeals import runtime
from appeals.extensions import limiter
from appeals.services import auth


def request_json() -> dict:
    """The request's JSON object, or {} for anything else (never raises, even on deep nesting)."""
    if not request.is_json:
        return {}
    try:
        data = json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _identifier() -> str:
    data = request_json() if request.is_json else request.form
    for name in ("username", "email", "identifier"):
        value = data.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _kind_for(default: str) -> str:
    # The token endpoint serves both: an `otp` field makes it a staff login.
    if request.blueprint == "api" and "otp" in request_json():
        return "staff"
    return default


def _subject(kind: str) -> str:
    if kind == "staff" and request.endpoint == "reviewer.login_code":
        pending = session.get("staff_login") or {}
        return f"staff:{pending.get('id')}"
    return auth.login_subject(_kind_for(kind), _identifier())


def _client() -> str:
    return request.remote_addr or "unknown"


SUCCESS = (201, 302, 303)  # a login (or login step) that succeeded answers one of these


def _limits(kind: str) -> list[tuple[RateLimitItem, str]]:
    settings = runtime.settings()
    subject, client = _subject(kind), _client()
    items = [(item, "login-ip:" + client) for item in parse_many(settings.login_rate_limit)]
    items += [(item, f"login-account-ip:{subject}:{client}") for item in parse_many(settings.login_rate_limit)]
    items += [(item, "login-account:" + subject) for item in parse_many(settings.login_account_rate_limit)]
    return items


def login_limited(kind: str, error_message: str = "Too many login attempts. Wait a minute and try again."):
    """Decorate a login route (`kind`: account, staff or researcher) with the three login limits.

    Every POST takes one unit of each limit first, atomically (Redis INCR), and is refused
    with 429 once any is spent; a login that succeeds gives its units back, so only failed
    attempts use the limits up.
    """

    def decorate(view):
        @functools.wraps(view)
        def limited(*args, **kwargs):
            if request.method != "POST":
                return view(*args, **kwargs)
            strategy = FixedWindowRateLimiter(limiter.storage)
            taken = []
            for item, key in _limits(kind):
                allowed = strategy.hit(item, key)
                taken.append((item, key))
                if not allowed:
                    raise TooManyRequests(error_message)
            response = make_response(view(*args, **kwargs))
            if response.status_code in SUCCESS:
                for item, key in taken:
                    limiter.storage.incr(item.key_for(key), item.get_expiry(), amount=-1)
            return response

        return limited

    return decorate


def download_email_key() -> str:
    """Rate-limit key for the address a download request names (form or JSON), safe for any input."""
    data = request_json() if request.is_json else request.form
    email = data.get("email")
    ident = auth.normalise_identity(email) if isinstance(email, str) else ""
    return "download-email:" + hashlib.sha256(ident.encode("utf-8", "replace")).hexdigest()[:32]


# The download gate's limits, the same for the page and the API: per client address, and per
# e-mail address named (links go out by mail, so one address must not be flooded from many).
DOWNLOAD_LIMIT = "30 per hour"
DOWNLOAD_EMAIL_LIMIT = "10 per hour"


def download_limited(view):
    """Decorate a download route (page or API) with the download gate's two limits, on POST."""
    view = limiter.limit(DOWNLOAD_EMAIL_LIMIT, methods=["POST"], key_func=download_email_key)(view)
    return limiter.limit(DOWNLOAD_LIMIT, methods=["POST"])(view)
