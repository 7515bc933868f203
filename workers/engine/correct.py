"""Correction semantics (THE only place): re-hash and remove of accounts, row by row and file by file.

Section 5 of the format reference, per account of a batch:
- re-hash: epoch+1 gives the new pseudonym; in every row it authors, userid,
  user_display_name and user_screen_name become the pseudonym and the profile
  fields are cleared (both variants); media members are renamed.
- remove: its users row, tweets and media members leave every variant.
- both: references by other rows (in_reply_to_userid, retweet_userid,
  user_mentions entries) and `@handle` mentions in tweet_text (whole handle,
  case-insensitive) become the new pseudonym; earlier pseudonyms found in text
  are replaced too. Every other record keeps its raw bytes.

Files are rewritten at near-copy speed in one pass over the mapped parent file:
windows of whole records are searched for all the needles at once (ids,
pseudonyms, screen names case-insensitively; search.Needles), windows without a
hit are written from the mapping as they are, and only records holding a hit are
parsed; a hit that is not a real reference (decoy) leaves the record untouched.
Verification rides along on the same windows (verify.RewriteCheck).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import csvio, zips
from .handles import replace_handles
from .search import Needles
from .store import Unmapper, map_file
from .hashing import split_member, IDENTITY_FIELDS, MENTIONS_FIELD, PROFILE_FIELDS, REFERENCE_FIELDS

DROP = object()  # row_fix result: the record leaves the file
# Window size of rewrite_csv: each window is passed over several times (search, write, hash),
# so a window that stays in the CPU cache beats a large one, and a hit re-checks less.
REWRITE_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Target:
    """One account of a batch, as the data currently spells it."""

    user_id: str
    action: str  # "remove" | "rehash"
    old_ids: frozenset  # every identity it may have in any variant: raw id + pseudonyms of epochs 0..e
    screen_names: frozenset  # lowercased screen names known for it
    old_pseudonyms: tuple  # pseudonyms of epochs 0..e (all become "previous")
    new: str  # pseudonym of epoch e+1


class Corrector:
    """Applies a batch's targets to rows, records and media member names."""

    def __init__(self, targets: list[Target]):
        self.targets = targets
        self.id_map = {old: t.new for t in targets for old in t.old_ids}
        self.removed = {old for t in targets if t.action == "remove" for old in t.old_ids}
        self.sn_map = {sn: t.new for t in targets for sn in t.screen_names}
        self.pseudo_map = {p: t.new for t in targets for p in t.old_pseudonyms}

    @classmethod
    def of_maps(cls, id_map: dict, removed: set, sn_map: dict, pseudo_map: dict) -> "Corrector":
        """A Corrector given its maps as __init__ builds them from targets (every old id -> new pseudonym,
        removed old ids, lowercased screen name -> new pseudonym, earlier pseudonym -> new pseudonym):
        the import's ledger passes maps whose pseudonyms are computed on first lookup."""
        self = cls.__new__(cls)
        self.targets = []
        self.id_map, self.removed, self.sn_map, self.pseudo_map = id_map, removed, sn_map, pseudo_map
        return self

    # Needles for the byte search: case-sensitive ids, case-insensitive screen names.
    @functools.cached_property
    def cs_needles(self) -> list[bytes]:
        return sorted({i.encode() for i in self.id_map if i})

    @functools.cached_property
    def ci_needles(self) -> list[bytes]:
        return sorted({s.encode().lower() for s in self.sn_map if s})

    def fix_text(self, text: str) -> str:
        """Replace @handles of the targets and their earlier pseudonyms in a tweet_text."""
        # One dict lookup per handle in the text: a ledger of thousands of names costs no more than one.
        text = replace_handles(text, self.sn_map)
        if self.pseudo_map and "=" in text:
            # A pseudonym is 43 base64 characters and '=': look up the window before each '='.
            found = set()
            k = text.find("=", 43)
            while k >= 0:
                found.add(text[k - 43:k + 1])
                k = text.find("=", k + 1)
            for old in found & self.pseudo_map.keys():
                text = text.replace(old, self.pseudo_map[old])
        return text

    def changes(self, author: str | None, refs: tuple, mentions: str | None, text: str | None,
                profile: tuple = ()):
        """DROP, or the (field name, new value) pairs the batch changes in a record given as its author id,
        its REFERENCE_FIELDS values, its MENTIONS_FIELD and tweet_text values and its PROFILE_FIELDS
        values (None: the file lacks the field): only values that differ."""
        out = []
        if author is not None:
            if author in self.removed:
                return DROP
            p = self.id_map.get(author)
            if p is not None:
                out = [(name, p) for name in IDENTITY_FIELDS]
                out += [(name, "") for name, v in zip(PROFILE_FIELDS, profile) if v]
        for name, v in zip(REFERENCE_FIELDS, refs):
            if v is not None and v in self.id_map:
                out.append((name, self.id_map[v]))
        if mentions is not None and mentions not in ("", "[]"):
            new = csvio.list_replace(mentions, self.id_map)
            if new != mentions:
                out.append((MENTIONS_FIELD, new))
        if text is not None:
            new = self.fix_text(text)
            if new != text:
                out.append(("tweet_text", new))
        return out

    def row(self, fields: list[str], cols: dict[str, int]):
        """DROP, None (record not concerned) or the corrected fields."""
        def get(name):
            i = cols.get(name)
            return None if i is None else fields[i]

        res = self.changes(get("userid"), tuple(get(n) for n in REFERENCE_FIELDS), get(MENTIONS_FIELD),
                           get("tweet_text"), tuple(get(n) for n in PROFILE_FIELDS))
        if res is DROP:
            return DROP
        new = list(fields)
        for name, v in res:
            i = cols.get(name)
            if i is not None:
                new[i] = v
        return None if new == fields else new

    def member(self, name: str) -> str | None:
        """New media member name, or None when the member leaves the archive."""
        account, rest = split_member(name)
        if account in self.removed:
            return None
        p = self.id_map.get(account)
        return p + rest if p else name


def hit_records(buf, hits: list[int], start: int = 0):
    """Yield (s, e) of each distinct record of buf holding a hit, in order; buf[start] begins a record."""
    cur = start
    for h in hits:
        if h < cur:
            continue
        s, e = csvio.record_span(buf, cur, h)
        yield s, e
        cur = e


def splice(a: int, b: int, edits: list) -> list:
    """What is written for src[a:b]: parent ranges (start, end) between the edits and the edits' new
    records (bytes), in order; `edits` are (start, end, new record | None) in src."""
    pieces = []
    pos = a
    for s, e, new_raw in edits:
        if s > pos:
            pieces.append((pos, s))
        if new_raw is not None:
            pieces.append(new_raw)
        pos = e
    if pos < b:
        pieces.append((pos, b))
    return pieces


@dataclass
class FileChange:
    """What rewriting one file did."""

    rows_removed: int = 0
    rows_rewritten: int = 0
    edits: list = field(default_factory=list)  # (old_start, old_end, new bytes | None) for CSV; (old, new|None) names for zips


def rewrite_csv(src, out, fix: Corrector, on_change: Callable | None = None, check=None) -> FileChange:
    """Copy the CSV in src (bytes or an mmap of the parent file) to out (None: dry run) with the batch applied.

    One pass over windows of whole records: one search for the needles (the
    corrector's and the check's), then only the records holding a hit are parsed;
    everything else is written as slices of src. `check` (a verify.RewriteCheck)
    sees each window's edits, hits and the pieces written in its place.
    """
    header_end, names = csvio.header(src)
    cols = {n: i for i, n in enumerate(names)}
    cs, ci = fix.cs_needles, fix.ci_needles
    if check is not None:
        cs, ci = cs + check.cs_needles, ci + check.ci_needles
    needles = Needles.of(cs, ci)
    ch = FileChange()
    view = memoryview(src)
    unmap = Unmapper(src)  # resident size bounded, however large the file
    if out is not None:
        out.write(view[:header_end])
    for a, b in csvio.record_windows(src, header_end, REWRITE_CHUNK):
        hits = [a + h for h in needles.find(view[a:b])]
        edits = []  # (start, end, new record | None), offsets in src
        for s, e in hit_records(src, hits, a):
            raw = bytes(view[s:e])
            try:
                fields = csvio.parse_record(raw)
            except csvio.CsvProblem as exc:
                raise csvio.CsvProblem(0, f"record at byte offset {s}: {exc.problem}") from None
            res = fix.row(fields, cols)
            if res is None:
                continue  # a decoy: the needle is not a reference of the account
            new_raw = None if res is DROP else csvio.encode_record(res, csvio.terminator(raw))
            edits.append((s, e, new_raw))
            if on_change is not None:
                on_change(fields, cols, None if res is DROP else res)
        # Parent bytes are written as slices of the map: nothing is copied, whatever the window holds.
        pieces = splice(a, b, edits)
        if check is not None:
            check.window(src, a, b, edits, hits, pieces)
        if out is not None:
            for piece in pieces:
                out.write(view[piece[0]:piece[1]] if isinstance(piece, tuple) else piece)
        unmap.passed(b)
        for _, _, new_raw in edits:
            if new_raw is None:
                ch.rows_removed += 1
            else:
                ch.rows_rewritten += 1
        ch.edits.extend(edits)
    return ch


def write_zip(src: Path, out, rename: Callable[[str], str | None], hint=None) -> FileChange:
    """Write the zip at src to out (a HashingWriter) with members renamed or dropped by rename();
    `hint`: byte strings of which every name rename() changes holds one (Corrector.cs_needles)."""
    return _zip_change(zips.rewrite(src, out, rename, hint))


def scan_zip(src: Path, rename: Callable[[str], str | None], hint=None) -> FileChange:
    """Dry run of write_zip: which members would be renamed or dropped."""
    d = zips.read_directory(map_file(src))
    return _zip_change([(d.name(i), new) for i, new in d.changes(rename, hint).items()])


def _zip_change(edits: list[tuple[str, str | None]]) -> FileChange:
    removed = sum(1 for _, new in edits if new is None)
    return FileChange(rows_removed=removed, rows_rewritten=len(edits) - removed, edits=list(edits))
