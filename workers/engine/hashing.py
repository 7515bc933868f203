"""The hashing rule of the public variant: pseudonyms and which fields they replace (THE only place)."""

from __future__ import annotations

import base64
import hashlib
import hmac

# Accounts with fewer followers than this are hashed in the public variant.
HASH_FOLLOWER_THRESHOLD = 5000

# Fields that carry an author's identity; all take the pseudonym.
IDENTITY_FIELDS = ("userid", "user_display_name", "user_screen_name")
# Fields that hold one referred-to user id.
REFERENCE_FIELDS = ("in_reply_to_userid", "retweet_userid")
# List field whose entries are referred-to user ids.
MENTIONS_FIELD = "user_mentions"
# Text field whose @handle mentions of hashed accounts take the pseudonym.
TEXT_FIELD = "tweet_text"
# Profile fields cleared by a re-hash.
PROFILE_FIELDS = ("user_reported_location", "user_profile_description", "user_profile_url")


def pseudonym(key: bytes, user_id: str, epoch: int) -> str:
    """base64(HMAC-SHA-256(key, "<userid>:<epoch>")): 44 characters ending in '='."""
    mac = hmac.new(key, f"{user_id}:{epoch}".encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")


def is_hashed(follower_count: int) -> bool:
    """Whether an account with this follower count is hashed in the public variant."""
    return follower_count < HASH_FOLLOWER_THRESHOLD


def account_digest(key: bytes, user_id: str) -> str:
    """Keyed digest naming an account in the private account state without storing its id."""
    return hmac.new(key, b"appeals-account-state:" + user_id.encode("utf-8"), hashlib.sha256).hexdigest()


def hashed_file_name(unhashed_name: str) -> str:
    """Public file name for an unhashed archive file name (`unhashed` -> `hashed`)."""
    head, sep, tail = unhashed_name.rpartition("_unhashed")
    if not sep:
        raise ValueError(f"not an unhashed file name: {unhashed_name}")
    return head + "_hashed" + tail


def hash_row(fields: list[str], cols: dict[str, int], pseudo_of: dict[str, str],
             handle_of: dict[str, str] | None = None) -> list[str] | None:
    """Apply the public-variant rule to one parsed row; return new fields, or None if unchanged.

    `pseudo_of` maps the user id of each hashed account to its pseudonym, `handle_of` its
    lowercased screen name: `@handle` mentions of hashed accounts in tweet_text become
    `@` + pseudonym (section 5; Twitter left them in clear, which undid the hashing).
    """
    from .csvio import list_replace  # local import: csvio does not depend on hashing
    from .handles import replace_handles

    new = None
    uid_i = cols.get("userid")
    if uid_i is not None:
        p = pseudo_of.get(fields[uid_i])
        if p is not None:
            new = list(fields)
            for name in IDENTITY_FIELDS:
                i = cols.get(name)
                if i is not None:
                    new[i] = p
    for name in REFERENCE_FIELDS:
        i = cols.get(name)
        if i is not None:
            p = pseudo_of.get(fields[i])
            if p is not None:
                new = new or list(fields)
                new[i] = p
    i = cols.get(MENTIONS_FIELD)
    if i is not None and fields[i] not in ("", "[]"):
        replaced = list_replace(fields[i], pseudo_of)
        if replaced != fields[i]:
            new = new or list(fields)
            new[i] = replaced
    i = cols.get(TEXT_FIELD)
    if handle_of and i is not None and "@" in fields[i]:
        replaced = replace_handles(fields[i], handle_of)
        if replaced != fields[i]:
            new = new or list(fields)
            new[i] = replaced
    return new


def split_member(name: str) -> tuple[str, str]:
    """(account, rest) of a media member name `<account>/images/<tweetid>-<n>.<ext>`.

    Split at the last '/images/' because a base64 pseudonym may itself contain '/'.
    """
    i = name.rfind("/images/")
    if i < 0:
        first, sep, rest = name.partition("/")
        return first, sep + rest
    return name[:i], name[i:]
