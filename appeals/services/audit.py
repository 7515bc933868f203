"""Writing to the append-only audit log; one call per action, inside the action's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appeals import db
from appeals.models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who acts: a principal's kind, id and label, with where the request came from."""

    kind: str  # account | staff | researcher | system | operator
    id: int | None
    label: str
    ip: str | None = None
    user_agent: str | None = None

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls("system", None, label)


def record(
    actor: Actor,
    action: str,
    object_type: str,
    object_id: Any,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEntry:
    """Add an audit entry to the current transaction (the caller commits)."""
    entry = AuditEntry(
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_label=actor.label[:254],
        ip=actor.ip,
        user_agent=(actor.user_agent or None) and actor.user_agent[:512],
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        before=before,
        after=after,
    )
    db.session.add(entry)
    return entry
