"""Byte-level scans with Hyperscan: needle search (ids and pseudonyms exactly, screen names ASCII-case-insensitively,
in one pass), and UTF-8 validation without decoding.

A correction searches every byte it rewrites for a handful of needles (the
accounts' ids, pseudonyms and screen names). Hyperscan scans for all of them at
once with SIMD, about five times faster than one `bytes.find` per needle after a
`bytes.lower()` of the block, and it reads bytes, mmaps and memoryviews alike, so
a file mapped into memory is searched without being copied. Only `find` is
promised: every place a needle starts, overlapping ones included; callers parse
the record around each hit to decide what it is.
"""

from __future__ import annotations

import functools
import threading
from typing import Iterable


class Needles:
    """A compiled set of needles. The database is shared; each thread scans with its own scratch space."""

    def __init__(self, exact: Iterable[bytes] = (), caseless: Iterable[bytes] = ()):
        import hyperscan  # here, not at the top: commands that search nothing start without it

        pats = [(n, 0) for n in sorted(set(exact)) if n]
        pats += [(n, hyperscan.HS_FLAG_CASELESS) for n in sorted(set(caseless)) if n]
        self._lengths = [len(n) for n, _ in pats]
        self._db = None
        self._local = threading.local()
        if pats:
            self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            self._db.compile(expressions=[n for n, _ in pats], ids=list(range(len(pats))), elements=len(pats),
                             flags=[f for _, f in pats], literal=True)

    @staticmethod
    def of(exact: Iterable[bytes] = (), caseless: Iterable[bytes] = ()) -> "Needles":
        """The Needles for these needle sets, compiled once: a batch searches every file for the same ones."""
        return _compiled(frozenset(exact), frozenset(caseless))

    def find(self, buf) -> list[int]:
        """Sorted, distinct offsets in buf (bytes, mmap or memoryview) where any needle starts."""
        if self._db is None or not len(buf):
            return []
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            import hyperscan

            scratch = self._local.scratch = hyperscan.Scratch(self._db)
        starts: list[int] = []
        lengths = self._lengths

        def on_match(pattern: int, _from: int, to: int, _flags: int, _ctx) -> None:
            starts.append(to - lengths[pattern])  # without SOM, hyperscan reports where a match ends

        self._db.scan(buf, match_event_handler=on_match, scratch=scratch)
        return sorted(set(starts))


@functools.lru_cache(maxsize=64)
def _compiled(exact: frozenset, caseless: frozenset) -> Needles:
    return Needles(exact, caseless)


# A byte string is valid UTF-8 (as bytes.decode reads it) exactly when it does not start with a continuation
# byte, does not end inside a sequence, and none of these windows occurs in it (the standard decoder's
# DFA, unrolled into the local patterns that break it): a scan finds them at several times the speed of
# decoding, which builds a str the import never uses.
_C = rb"[\x80-\xBF]"  # a continuation byte
_NOT_C = rb"[\x00-\x7F\xC0-\xFF]"
_INVALID_UTF8 = [
    rb"[\xC0\xC1\xF5-\xFF]",  # never in UTF-8
    rb"[\x00-\x7F]" + _C,  # a continuation after ASCII
    rb"[\xC2-\xDF]" + _C * 2, rb"[\xE0-\xEF]" + _C * 3, rb"[\xF0-\xF4]" + _C * 4,  # one continuation too many
    rb"[\xC2-\xF4]" + _NOT_C, rb"[\xE0-\xF4]" + _C + _NOT_C, rb"[\xF0-\xF4]" + _C * 2 + _NOT_C,  # one too few
    rb"\xE0[\x80-\x9F]", rb"\xED[\xA0-\xBF]", rb"\xF0[\x80-\x8F]", rb"\xF4[\x90-\xBF]",  # overlong, surrogate, > U+10FFFF
]


def valid_utf8(buf) -> bool:
    """Whether buf (bytes, mmap or memoryview) is valid UTF-8, that is whether buf.decode("utf-8") would succeed."""
    import hyperscan

    view = memoryview(buf).cast("B")
    if not len(view):
        return True
    if 0x80 <= view[0] <= 0xBF:
        return False
    tail = bytes(view[-3:])
    for k, x in enumerate(tail):  # a sequence cut short by the end (the patterns need the byte after it)
        if len(tail) - k < (2 if 0xC2 <= x <= 0xDF else 3 if 0xE0 <= x <= 0xEF else 4 if 0xF0 <= x <= 0xF4 else 0):
            return False
    db, local = _utf8_db()
    scratch = getattr(local, "scratch", None)
    if scratch is None:
        scratch = local.scratch = hyperscan.Scratch(db)
    try:
        db.scan(view, match_event_handler=_stop, scratch=scratch)
    except hyperscan.ScanTerminated:
        return False
    return True


def _stop(*_args) -> bool:
    return True  # the first invalid window settles it


@functools.lru_cache(maxsize=1)
def _utf8_db():
    import hyperscan

    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(expressions=_INVALID_UTF8, ids=list(range(len(_INVALID_UTF8))), elements=len(_INVALID_UTF8),
               flags=[hyperscan.HS_FLAG_SINGLEMATCH] * len(_INVALID_UTF8))
    return db, threading.local()
