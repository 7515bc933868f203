"""Where an owner's account appears: read from the dataset engine's account index, for that account only."""

from __future__ import annotations

from appeals import runtime
from appeals.services import policy


def entries_for_user_id(user_id: str) -> list[dict]:
    """Each published dataset holding `user_id`, as plain dicts, sorted by dataset name (no authorization)."""
    entries = []
    for entry in runtime.engine().footprint(user_id):
        present = entry.authored_tweets or entry.referring_rows or entry.in_users_file or entry.files
        if not present:
            continue
        entries.append(
            {
                "dataset": entry.dataset,
                "version": entry.version,
                "authored_tweets": int(entry.authored_tweets),
                "referring_rows": int(entry.referring_rows),
                "in_users_file": bool(entry.in_users_file),
                "hashed_publicly": bool(entry.hashed_publicly),
            }
        )
    return sorted(entries, key=lambda e: e["dataset"])


def for_owner(principal) -> list[dict]:
    """The calling owner's own footprint; nothing about any other account."""
    policy.authorize(principal, "footprint.view")
    return entries_for_user_id(principal.user_id)
