"""THE appeal status table: statuses, allowed moves, who is mailed on each move, the status sets, owner texts.

A leaf: it imports nothing from the application but the translation markers (appeals/i18n.py,
itself a leaf), so models, services, pages, API and mail all derive their vocabulary from here.
`services.appeals.transition` enforces it.
"""

from __future__ import annotations

from appeals.i18n import lazy_gettext as _l

# The status vocabulary shared by pages, API and emails (a contract: names never change).
STATUSES = (
    "filed",
    "in_review",
    "info_requested",
    "escalated",
    "approved",
    "correction_queued",
    "correcting",
    "corrected",
    "correction_failed",
    "denied",
    "withdrawn",
)

# Who is mailed when an appeal takes an edge.
OWNER = "owner"  # the appeal's contact address
OWNER_FIRST_TIME = "owner, the first time only"  # repeated claims are the team's business
NOBODY = "nobody"

# Every allowed move, and who hears of it. A move missing here is refused. `None` is "not yet filed".
EDGES: dict[tuple[str | None, str], str] = {
    (None, "filed"): OWNER,  # the owner files: a confirmation
    ("filed", "in_review"): OWNER_FIRST_TIME,  # a reviewer claims it
    ("filed", "withdrawn"): OWNER,
    ("in_review", "filed"): NOBODY,  # the claim was released or expired before a decision
    ("in_review", "info_requested"): OWNER,
    ("in_review", "escalated"): OWNER,
    ("in_review", "approved"): OWNER,
    ("in_review", "denied"): OWNER,
    ("in_review", "withdrawn"): OWNER,
    ("info_requested", "in_review"): OWNER,  # the owner replied, or the request expired
    ("info_requested", "withdrawn"): OWNER,
    ("escalated", "info_requested"): OWNER,
    ("escalated", "approved"): OWNER,
    ("escalated", "denied"): OWNER,
    ("escalated", "withdrawn"): OWNER,
    ("approved", "correction_queued"): OWNER,  # a senior confirms (four eyes)
    ("approved", "in_review"): OWNER,  # a senior sends the approval back
    ("approved", "withdrawn"): OWNER,
    ("correction_queued", "correcting"): OWNER,  # a worker's run takes it
    # The worker finishes or fails a correction whether or not its run had marked it correcting.
    ("correction_queued", "corrected"): OWNER,
    ("correction_queued", "correction_failed"): OWNER,
    ("correcting", "corrected"): OWNER,
    ("correcting", "correction_failed"): OWNER,
    ("correction_failed", "correction_queued"): OWNER,  # an admin retries
}

# from-status -> statuses it may move to (derived from EDGES).
TRANSITIONS: dict[str, frozenset[str]] = {
    status: frozenset(to for (source, to) in EDGES if source == status) for status in STATUSES
}

# --- the status sets -------------------------------------------------------------------------

# Nothing more will happen: no move leaves these.
FINAL = tuple(s for s in STATUSES if not TRANSITIONS[s])
OPEN = tuple(s for s in STATUSES if s not in FINAL)
# The next step is the review team's (a reviewer, or a senior for escalations and confirmations).
WAITING_FOR_STAFF = ("filed", "in_review", "escalated", "approved")
# The next step is the owner's.
WAITING_FOR_OWNER = ("info_requested",)
# The published data is being corrected: the worker's business (an admin retries a failure).
IN_CORRECTION = ("correction_queued", "correcting", "correction_failed")
# Not decided yet: the SLA clock runs. A reviewer can hold (claim) an appeal in these.
UNDECIDED = ("filed", "in_review", "info_requested", "escalated")
CLAIMABLE = UNDECIDED
# Only seniors claim and decide these.
SENIOR_ONLY = ("escalated",)
# The decision is final and shown to the owner (an approval awaiting its second reviewer may still change).
DECIDED = ("correction_queued", "correcting", "corrected", "correction_failed", "denied")

# --- what each status means to the owner, shown on pages and in emails -------------------------
# Translated lazily (issue 16) into the locale in force where they are shown: use str() or title().

STATUS_TEXT: dict[str, tuple] = {
    "filed": (_l("Filed"), _l("Your appeal is waiting for a reviewer. You will get an email when that changes.")),
    "in_review": (_l("In review"), _l("A reviewer is looking at your appeal and the published data.")),
    "info_requested": (
        _l("Information requested"),
        _l("The reviewer needs more information from you. Please answer on the appeal page."),
    ),
    "escalated": (_l("Escalated"), _l("Your appeal has been passed to a senior reviewer.")),
    "approved": (
        _l("Approved, awaiting confirmation"),
        _l("A reviewer approved your appeal. A second, senior reviewer must confirm it before the data changes."),
    ),
    "correction_queued": (
        _l("Correction queued"),
        _l("Your appeal was approved and confirmed. The published datasets are about to be corrected."),
    ),
    "correcting": (_l("Correcting"), _l("The published datasets are being corrected now.")),
    "corrected": (
        _l("Corrected"),
        _l("A corrected release of every dataset concerned has been published. Nothing more is needed from you."),
    ),
    "correction_failed": (
        _l("Correction delayed"),
        _l("The correction hit a problem and has not been published yet. The team has been told and will retry."),
    ),
    "denied": (_l("Denied"), _l("The reviewers decided not to change the published data. Their reasons are below.")),
    "withdrawn": (_l("Withdrawn"), _l("You withdrew this appeal.")),
}


def can_move(from_status: str | None, to_status: str) -> bool:
    """True when the table allows `from_status` -> `to_status` (None: a new appeal being filed)."""
    return (from_status, to_status) in EDGES


def mailed(from_status: str | None, to_status: str) -> str:
    """Who is mailed when an appeal moves `from_status` -> `to_status` (OWNER, OWNER_FIRST_TIME or NOBODY)."""
    return EDGES.get((from_status, to_status), NOBODY)


def title(status: str) -> str:
    """The owner-facing name of `status`, in the locale in force."""
    return str(STATUS_TEXT[status][0])


def explanation(status: str) -> str:
    """What `status` means to the owner and what comes next, in the locale in force."""
    return str(STATUS_TEXT[status][1])
