"""The @handle rule: a handle is '@' followed by a maximal run of [A-Za-z0-9_], compared case-insensitively."""

from __future__ import annotations

import re

HANDLE_CHARS = "A-Za-z0-9_"
# A handle token in text; the 43-char-plus-'=' alternative catches `@<pseudonym>` written by corrections.
_TOKEN = re.compile(r"@([A-Za-z0-9+/]{43}=|[A-Za-z0-9_]+)")


def extract_handles(text: str) -> set[str]:
    """Distinct handles mentioned in text, lowercased, without the '@'."""
    if "@" not in text:
        return set()
    return {m.lower() for m in _TOKEN.findall(text)}


def handle_pattern(names) -> re.Pattern | None:
    """Regex matching `@name` for any of names, case-insensitive, as a whole handle only."""
    names = sorted({n for n in names if n}, key=len, reverse=True)
    if not names:
        return None
    alt = "|".join(re.escape(n) for n in names)
    return re.compile(rf"@(?:{alt})(?![{HANDLE_CHARS}])", re.IGNORECASE)


_HANDLE = re.compile(rf"@([{HANDLE_CHARS}]+)")


def replace_handles(text: str, mapping: dict[str, str]) -> str:
    """Replace each whole `@handle` whose lowercased name is in mapping by `@` + mapping[name]."""
    if "@" not in text or not mapping:
        return text

    def sub(m: re.Match) -> str:
        new = mapping.get(m.group(1).lower())
        return m.group(0) if new is None else "@" + new

    return _HANDLE.sub(sub, text)
