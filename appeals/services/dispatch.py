"""Work handed to the workers, through functions bound at start (create_app, the worker): never an import of them.

Services call `corrections()` and `mail()` after their commit; filing calls `warm_activity()`, and a
publication `published()`, so reviewers' activity summaries are made ahead of their first view. The domain knows
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
_SWEEP, _FIRST_VIEW = "the worker's sweep will retry", "the reviewer's first view will make it"
# Each kind of work: (what its jobs are called in the log, what happens to the work when none is sent).
_KINDS = {"corrections": ("correction", _SWEEP), "mail": ("mail", _SWEEP),
          "warm_activity": ("activity summary", _FIRST_VIEW), "published": ("activity summary", _FIRST_VIEW)}


def bind(*, corrections: Callable[[list[int]], object], mail: Callable[[datetime | None], object],
         warm_activity: Callable[[list[int]], object] | None = None,
         published: Callable[[dict[str, int]], object] | None = None) -> None:
    """Install the senders: `corrections(ids)` makes sure each queued correction has a job,
    `mail(when)` has the outbox delivered at `when` (None: now); `warm_activity(appeal_ids)` and
    `published(releases)` ask for reviewers' activity summaries to be made ahead of their first view."""
    _bound["corrections"] = corrections
    _bound["mail"] = mail
    for name, sender in (("warm_activity", warm_activity), ("published", published)):
        if sender is not None:
            _bound[name] = sender


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


def warm_activity(appeal_ids: list[int]) -> None:
    """After commit: ask for these appeals' activity summaries to be made now; never raises (without
    one, the reviewer's first view makes it)."""
    _call("warm_activity", list(appeal_ids))


def published(releases: dict[str, int]) -> None:
    """After new releases were published (dataset -> version): ask for the activity summaries of the open
    appeals they hold; never raises."""
    _call("published", dict(releases))


def _call(name: str, argument) -> None:
    sender = _bound.get(name)
    if sender is None:
        log.debug("no %s dispatcher bound; %s", name, _KINDS[name][1])
        return
    try:
        sender(argument)
    except Exception:  # noqa: BLE001 - the change is committed; the work is found later (see _KINDS)
        log.warning("could not enqueue %s jobs; %s", *_KINDS[name], exc_info=True)
