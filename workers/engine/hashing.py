"""The hashing rule of the public variant: pseudonyms and which fields they replace (THE only place)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from .csvio import list_replace  # csvio does not depend on hashing: no cycle
from .handles import replace_handles

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


def hash_changes(author: str | None, refs: tuple, mentions: str | None, text: str | None,
                 pseudo_of: dict[str, str], handle_of: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """The public-variant rule for one record given as its author id, its REFERENCE_FIELDS values (None
    where the file lacks one), its MENTIONS_FIELD and TEXT_FIELD values (None: absent): the
    (field name, new value) pairs it changes, in field order of IDENTITY, REFERENCE, MENTIONS, TEXT.

    `pseudo_of` maps the user id of each hashed account to its pseudonym, `handle_of` its
    lowercased screen name: `@handle` mentions of hashed accounts in tweet_text become
    `@` + pseudonym (section 5; Twitter left them in clear, which undid the hashing).
    """
    out = []
    if author is not None:
        p = pseudo_of.get(author)
        if p is not None:
            out = [(name, p) for name in IDENTITY_FIELDS]
    for name, v in zip(REFERENCE_FIELDS, refs):
        if v is not None:
            p = pseudo_of.get(v)
            if p is not None:
                out.append((name, p))
    if mentions is not None and mentions not in ("", "[]"):
        replaced = list_replace(mentions, pseudo_of)
        if replaced != mentions:
            out.append((MENTIONS_FIELD, replaced))
    if handle_of and text is not None and "@" in text:
        replaced = replace_handles(text, handle_of)
        if replaced != text:
            out.append((TEXT_FIELD, replaced))
    return out


def hash_row(fields: list[str], cols: dict[str, int], pseudo_of: dict[str, str],
             handle_of: dict[str, str] | None = None) -> list[str] | None:
    """Apply the public-variant rule (hash_changes) to one parsed row; return new fields, or None if unchanged."""
    def get(name):
        i = cols.get(name)
        return None if i is None else fields[i]

    changes = hash_changes(get("userid"), tuple(get(n) for n in REFERENCE_FIELDS), get(MENTIONS_FIELD),
                           get(TEXT_FIELD), pseudo_of, handle_of)
    new = None
    for name, v in changes:
        i = cols.get(name)
        if i is not None:
            new = new or list(fields)
            new[i] = v
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
