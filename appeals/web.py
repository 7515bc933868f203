"""Flask-side helpers shared by every blueprint: the acting principal and safe redirects (login limits: limits.py)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import g, request
from flask_login import current_user

from appeals.services.audit import Actor


def current_principal():
    """The logged-in (or bearer-token) principal of this request, or None."""
    principal = getattr(g, "api_principal", None)
    if principal is not None:
        return principal
    if current_user and current_user.is_authenticated:
        return current_user._get_current_object()
    return None


def actor_for(principal) -> Actor:
    """An audit Actor for `principal`, carrying this request's IP and user agent."""
    ip = request.remote_addr
    agent = request.user_agent.string if request.user_agent else None
    if principal is None:
        return Actor("anonymous", None, "anonymous", ip, agent)
    label = getattr(principal, "email", None) or getattr(principal, "screen_name", None) or str(principal.id)
    return Actor(principal.kind, principal.id, label, ip, agent)


def safe_next(target: str | None, prefix: str = "/") -> str | None:
    """`target` if it is a path on this site under `prefix`, else None: never an open redirect."""
    if not target or not target.startswith(prefix) or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None
