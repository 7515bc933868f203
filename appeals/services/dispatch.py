"""Work handed to the workers, through functions bound at start (create_app, the worker): never an import of them.

Services call `corrections()` and `mail()` after their commit. The domain knows
nothing of RQ: `workers.dispatch.install()` binds the real senders. Unbound (a
script, a test without the app), nothing is sent, and the worker's periodic sweep
still finds the work in the database; so do the bound senders when Redis is away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

log = logging.getLogger("appeals.dispatch")

_bound: dict[str, Callable] = {}
_LABELS = {"corrections": "correction", "mail": "mail"}


def bind(*, corrections: Callable[[list[int]], object], mail: Callable[[datetime | None], object]) -> None:
    """Install the senders: `corrections(ids)` makes sure each queued correction has a job,
    `mail(when)` has the outbox delivered at `when` (None: now)."""
    _bound["corrections"] = corrections
    _bound["mail"] = mail


def unbind() -> None:
    """Forget the senders (tests)."""
    _bound.clear()


def is_bound() -> bool:
    """True once `bind` has run in this process."""
    return bool(_bound)


def corrections(ids: list[int]) -> None:
    """After commit: ask for a job for each of these queued corrections; never raises."""
    _call("corrections", list(ids))


def mail(when: datetime | None = None) -> None:
    """After commit: ask for the outbox to be delivered (at `when`, for held messages); never raises."""
    _call("mail", when)


def _call(name: str, argument) -> None:
    sender = _bound.get(name)
    if sender is None:
        log.debug("no %s dispatcher bound; the worker's sweep will find the work", name)
        return
    try:
        sender(argument)
    except Exception:  # noqa: BLE001 - the change is committed; the sweep finds the work later
        log.warning("could not enqueue %s jobs; the worker's sweep will retry", _LABELS[name], exc_info=True)
