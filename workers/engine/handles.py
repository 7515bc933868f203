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


_TABLES = None


def _tables():
    """Byte classes of the two token rules: handle characters, base64 characters."""
    global _TABLES
    if _TABLES is None:
        import numpy as np  # here: the engine's other users of this module start without numpy

        hc = np.zeros(256, np.bool_)
        for r in (b"AZ", b"az", b"09"):
            hc[r[0]:r[1] + 1] = True
        hc[ord("_")] = True
        b64 = hc.copy()
        b64[ord("_")] = False
        b64[[ord("+"), ord("/")]] = True
        _TABLES = hc, b64
    return _TABLES


def handle_marks(buf: bytes, at) -> tuple[list[str], list]:
    """The rules above read at many '@' of a UTF-8 buffer at once: for each offset in `at` (sorted, of an
    '@' inside a text that a byte of neither class, such as a CSV field's closing quote, follows before
    the buffer ends): (the lowercased handle `replace_handles` reads there, '' if none; the lowercased
    token `extract_handles` reads there, or None). UTF-8 keeps ASCII bytes apart from every multi-byte
    character, and each '@' starts its own token, so this is the regexes' answer on the decoded text."""
    import numpy as np

    from . import csvio  # no cycle: csvio imports nothing from here

    n = len(at)
    if not n:
        return [], []
    hc, b64 = _tables()
    b = np.frombuffer(buf, np.uint8)
    at = np.asarray(at, np.int64)
    # The run of handle characters after each '@': up to the next byte that is not one.
    # A window of 32 bytes holds nearly every run; the rare longer one is followed to its end.
    win = np.minimum(at[:, None] + np.arange(1, 33), len(b) - 1)
    inrun = hc[b[win]]
    ends = at + 1 + np.argmin(inrun, axis=1)
    long = np.flatnonzero(inrun.all(axis=1))
    for k in long.tolist():
        e = int(at[k]) + 33
        while e < len(b) and hc[b[e]]:
            e += 1
        ends[k] = e
    runs = csvio.spans(buf, at + 1, ends, joined=True)[:-1].lower().decode("ascii").split("\0")
    tokens = [r or None for r in runs]
    # `@` + 43 base64 characters + '=' (a pseudonym): extract_handles reads all 44 instead.
    eq = np.flatnonzero((at + 44 < len(b)) & (b[np.minimum(at + 44, len(b) - 1)] == 0x3D))
    if len(eq):
        eq = eq[b64[b[at[eq, None] + np.arange(1, 44)]].all(axis=1)]
        for k, t in zip(eq.tolist(), csvio.spans(buf, at[eq] + 1, at[eq] + 45)):
            tokens[k] = t.decode("ascii").lower()
    return runs, tokens
