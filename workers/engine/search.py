"""Needle search over byte buffers: ids and pseudonyms exactly, screen names ASCII-case-insensitively, in one pass.

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
