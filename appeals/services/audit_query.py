"""Reading the audit log: staff filter it by action, actor, object and date; nobody can change it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select

from appeals import db
from appeals.models import AuditEntry
from appeals import requests
from appeals.requests import iso, number_problem
from appeals.services import policy
from appeals.services.errors import Invalid

MAX_PER_PAGE = 200


@dataclass(frozen=True)
class AuditFilters:
    """A validated audit log request."""

    action: str = ""
    actor: str = ""
    object_type: str = ""
    object_id: str = ""
    since: date | None = None
    until: date | None = None
    page: int = 1
    per_page: int = 50

    def as_params(self, **changes) -> dict:
        """Query-string parameters reproducing these filters (with `changes`)."""
        values = {**asdict(self), **changes}
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in values.items()
                if v not in (None, "") and not (k == "page" and v == 1) and not (k == "per_page" and v == 50)}


def parse_filters(args) -> AuditFilters:
    """Validate query parameters into AuditFilters; Invalid names every bad one."""
    problems = {}

    def day(name):
        raw = (args.get(name) or "").strip()
        found = requests.day(raw)
        if raw and found is None:
            problems[name] = "A date like 2024-05-31."
        return found

    def number(name, default, high):
        found, problem = number_problem(args.get(name), text=True, bounds=(1, high))
        if problem:
            problems[name] = problem
        return default if found is None else found

    texts = {name: (args.get(name) or "").strip() for name in ("action", "actor", "object_type", "object_id")}
    for name, value in texts.items():
        if len(value) > 254:
            problems[name] = "At most 254 characters."
    filters = AuditFilters(**texts, since=day("since"), until=day("until"),
                           page=number("page", 1, 100000), per_page=number("per_page", 50, MAX_PER_PAGE))
    if filters.since and filters.until and filters.since > filters.until:
        problems["until"] = "Must not be before the start date."
    if problems:
        raise Invalid("Some audit filters are not valid.", code="invalid_filters", fields=problems)
    return filters


def search(principal, filters: AuditFilters) -> dict:
    """Audit entries matching `filters`, newest first: {"entries", "page", "has_next"}."""
    policy.authorize(principal, "audit.view")
    query = select(AuditEntry)
    if filters.action:
        # "appeal." matches every appeal action; a full name matches just that action.
        if filters.action.endswith("."):
            query = query.where(AuditEntry.action.startswith(filters.action, autoescape=True))
        else:
            query = query.where(AuditEntry.action == filters.action)
    if filters.actor:
        query = query.where(func.lower(AuditEntry.actor_label).contains(filters.actor.lower(), autoescape=True))
    if filters.object_type:
        query = query.where(AuditEntry.object_type == filters.object_type)
    if filters.object_id:
        query = query.where(AuditEntry.object_id == filters.object_id)
    if filters.since:
        query = query.where(AuditEntry.created_at >= datetime.combine(filters.since, time.min))
    if filters.until:
        query = query.where(AuditEntry.created_at < datetime.combine(filters.until + timedelta(days=1), time.min))
    # One row more than a page tells whether there is a next page without counting a large table.
    rows = list(db.session.scalars(
        query.order_by(AuditEntry.id.desc()).limit(filters.per_page + 1).offset((filters.page - 1) * filters.per_page)
    ))
    return {"entries": rows[:filters.per_page], "page": filters.page, "has_next": len(rows) > filters.per_page}


def describe(entry: AuditEntry) -> dict:
    """An audit entry as plain data (the API's item)."""
    return {
        "id": entry.id,
        "at": iso(entry.created_at),
        "actor_kind": entry.actor_kind,
        "actor_id": entry.actor_id,
        "actor": entry.actor_label,
        "ip": entry.ip,
        "user_agent": entry.user_agent,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "before": entry.before,
        "after": entry.after,
    }
