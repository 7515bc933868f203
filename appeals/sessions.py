"""Web sessions revocable on the server (Flask side of `auth.session_is_valid`).

The signed cookie alone proves nothing: it carries the principal's session generation
and login/last-seen times, checked against the database on every request. Logout, a
password or TOTP reset and disabling bump the generation and end every session at
once; the idle timeout and the absolute lifetime end the rest.
"""

from __future__ import annotations

import time
from datetime import timedelta

from flask import session
from flask_login import login_user

from appeals import runtime
from appeals.requests import number_problem
from appeals.services import auth

STAMP = "_stamp"


def start_session(principal) -> None:
    """A fresh session for `principal`: nothing from before (a planted session included) survives."""
    session.clear()
    login_user(principal)
    session[STAMP] = auth.session_stamp(principal)


def load_user(identity: str):
    """Flask-Login's user loader: the principal, only while its session is valid on the server."""
    kind, _, raw_id = (identity or "").partition(":")
    principal_id, _problem = number_problem(raw_id, text=True)
    # The id is what get_id wrote ("kind:id"): anything else, blanks around it included, is no session.
    if principal_id is None or raw_id != raw_id.strip():
        return None
    principal = auth.load_principal(kind, principal_id)
    settings = runtime.settings()
    stamp = session.get(STAMP)
    if not auth.session_is_valid(principal, stamp, timedelta(minutes=settings.session_idle_minutes),
                                 timedelta(hours=settings.session_max_hours)):
        session.clear()
        return None
    now = time.time()
    if now - stamp["seen_at"] > 30:  # re-sign the cookie at most twice a minute
        session[STAMP] = {**stamp, "seen_at": now}
    return principal
