"""How a service action ends when it fails: rolled back at once, with stale writes as 409."""

from __future__ import annotations

import functools

from sqlalchemy.orm.exc import StaleDataError

from appeals import db
from appeals.i18n import lazy_gettext
from appeals.services.errors import Conflict

STALE_MESSAGE = lazy_gettext("This appeal changed while you were acting on it. Reload the page to see the current state, then try again.")


def atomic(fn):
    """Decorate a service action: any failure rolls the session back, so nothing half-done stays
    pending and row locks are released before the caller renders an error; a concurrent update
    caught by the version column becomes a 409 Conflict instead of a server error."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StaleDataError:
            db.session.rollback()
            raise Conflict(STALE_MESSAGE, code="stale_version") from None
        except Exception:
            db.session.rollback()
            raise

    return wrapper
