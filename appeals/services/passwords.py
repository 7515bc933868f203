"""Password hashing with argon2id; the one place that knows how passwords are stored."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from appeals.i18n import gettext as _

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    # Compared against when the user does not exist, so timing does not reveal which names are real.
    # Made on first use, not at import: every command imports this module, few check a password.
    return _hasher.hash("appeals-dummy-password")


MIN_LENGTH = 10


def hash_password(password: str) -> str:
    """The argon2id hash of `password`."""
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches `stored_hash`; spends the same time when there is no hash."""
    try:
        return _hasher.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """Why `password` is unacceptable as a new password, or None."""
    if len(password) < MIN_LENGTH:
        return _("Passwords need at least %(min)s characters.", min=MIN_LENGTH)
    if len(password) > 1024:
        return _("Passwords can have at most %(max)s characters.", max=1024)
    return None
