"""Platform accounts: creating them (the account directory's stand-in), logging them in, describing them."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from appeals import db
from appeals.models import Account, Researcher, Staff
from appeals import i18n
from appeals.i18n import gettext as _
from appeals.services import audit, auth
from appeals.services.audit import Actor
from appeals.services.errors import Conflict, Invalid, Unauthorized
from appeals.services.passwords import hash_password, password_problem

SCREEN_NAME_RE = re.compile(r"[A-Za-z0-9_]{1,15}")
# Platform ids are numeric in practice; opaque ids (letters, digits, - and _) are accepted too.
USER_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def email_problem(email: str) -> str | None:
    """Why `email` is not a usable address, or None."""
    if not email:
        return _("Enter an email address.")
    if len(email) > 254 or not EMAIL_RE.fullmatch(email) or any(ord(c) < 32 for c in email):
        return _("Enter an email address like name@example.org.")
    return None


def create_account(
    actor: Actor,
    *,
    user_id: str,
    screen_name: str,
    password: str,
    email: str | None = None,
    followers: int = 0,
    suspended: bool = False,
) -> Account:
    """Create a platform account after validating every field; refuses duplicates (409)."""
    user_id = (user_id or "").strip()
    screen_name = (screen_name or "").strip().lstrip("@")
    email = (email or "").strip() or None
    problems: dict[str, str] = {}
    if not USER_ID_RE.fullmatch(user_id):
        problems["user_id"] = "The user id must be 1 to 64 letters, digits, '-' or '_' (platform ids are numeric)."
    if not SCREEN_NAME_RE.fullmatch(screen_name):
        problems["screen_name"] = "A screen name is 1 to 15 letters, digits or underscores."
    if email is not None and (problem := email_problem(email)):
        problems["email"] = problem
    if not isinstance(followers, int) or isinstance(followers, bool) or followers < 0:
        problems["followers"] = "The follower count must be a whole number, 0 or more."
    if problem := password_problem(password or ""):
        problems["password"] = problem
    if problems:
        raise Invalid("The account was not created: " + " ".join(problems.values()), fields=problems)

    duplicates = {}
    if db.session.scalar(select(Account.id).where(Account.user_id == user_id)) is not None:
        duplicates["user_id"] = f"An account with user id {user_id} already exists."
    if db.session.scalar(select(Account.id).where(Account.screen_name_lower == screen_name.lower())) is not None:
        duplicates["screen_name"] = f"The screen name @{screen_name} is already taken."
    if email and db.session.scalar(select(Account.id).where(func.lower(Account.email) == email.lower())):
        duplicates["email"] = f"The email {email} already belongs to an account."
    if duplicates:
        raise Conflict("The account was not created: " + " ".join(duplicates.values()),
                       code="duplicate_account", fields=duplicates)

    account = Account(
        user_id=user_id,
        screen_name=screen_name,
        screen_name_lower=screen_name.lower(),
        email=email,
        password_hash=hash_password(password),
        followers=followers,
        suspended=suspended,
    )
    db.session.add(account)
    db.session.flush()
    audit.record(actor, "account.create", "account", account.id, None, describe(account))
    db.session.commit()
    return account


def login(identifier: str, password: str, actor: Actor) -> Account:
    """The account for a screen name or email and password; audits the attempt, raises Unauthorized."""
    identifier = (identifier or "").strip()
    if not identifier or not password:
        raise Invalid(_("Enter your screen name or email, and your password."),
                      fields={k: _("Required.") for k, v in (("username", identifier), ("password", password)) if not v})
    account = auth.authenticate_account(identifier, password)
    if account is None:
        # The label is the name tried, so repeated guesses at one account show in the audit log.
        audit.record(Actor(actor.kind, None, identifier[:254], actor.ip, actor.user_agent),
                     "account.login_failed", "account", None)
        db.session.commit()
        raise Unauthorized(_("That screen name or email and password do not match an account."),
                           code="invalid_credentials")
    audit.record(Actor("account", account.id, account.screen_name, actor.ip, actor.user_agent),
                 "account.login", "account", account.id)
    db.session.commit()
    return account


def describe(account: Account) -> dict:
    """The account as its owner (and the audit log) sees it; never the password hash."""
    return {
        "user_id": account.user_id,
        "screen_name": account.screen_name,
        "email": account.email,
        "followers": account.followers,
        "suspended": bool(account.suspended),
    }


def set_language(principal, actor: Actor, code: str) -> Account:
    """Store the owner's explicit language choice (a shipped language) on their account."""
    language = i18n.normalize(code)
    if language is None:
        raise Invalid(_("Choose one of the languages offered."), code="unknown_language",
                      fields={"language": _("Choose one of the languages offered.")})
    account = db.session.get(Account, getattr(principal, "id", None)) if isinstance(principal, Account) else None
    if account is None:
        raise Unauthorized(_("Please log in."))
    if account.language != language:
        before = account.language
        account.language = language
        audit.record(actor, "account.language", "account", account.id, {"language": before}, {"language": language})
        db.session.commit()
    return account


def whoami(principal) -> dict:
    """What the API's /me says about the calling principal."""
    if principal is None:
        raise Unauthorized(_("Please log in."))
    if isinstance(principal, Account):
        return {"kind": "account", "id": principal.id, **describe(principal)}
    if isinstance(principal, Staff):
        return {"kind": "staff", "id": principal.id, "email": principal.email, "role": principal.role}
    if isinstance(principal, Researcher):
        return {"kind": "researcher", "id": principal.id, "email": principal.email, "status": principal.status}
    raise Unauthorized(_("Please log in."))
