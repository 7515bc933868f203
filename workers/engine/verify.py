"""Verification: the section-5 invariant and byte-identity of a correction, and full scans of releases.

Before a correction publishes, every REWRITTEN file is checked over all its
bytes, block by block in the same pass that writes it (RewriteCheck): its bytes
must equal the parent file with exactly the declared records replaced or
removed (each a whole record of the parent, changed only in the fields the
rule may touch), its row count must equal the parent's minus the removed rows,
and no trace of the accounts may remain in it. Files a
correction does not rewrite are shared blobs: they are proven by sha256
equality with the parent release plus the account index showing that they
hold no row of, and no reference to, the batch's accounts.
"""

from __future__ import annotations

import hashlib
import struct
import zipfile
from dataclasses import dataclass

import numpy as np

from . import csvio
from .correct import hit_records, member_spans
from .handles import handle_pattern
from .search import Needles
from .store import map_file
from .hashing import split_member, hashed_file_name, IDENTITY_FIELDS, MENTIONS_FIELD, PROFILE_FIELDS, REFERENCE_FIELDS

# Fields a correction may change in a record it keeps; every other field must stay equal.
MUTABLE_FIELDS = set(IDENTITY_FIELDS) | set(PROFILE_FIELDS) | set(REFERENCE_FIELDS) | {MENTIONS_FIELD, "tweet_text"}
ID_FIELDS = ("userid",) + REFERENCE_FIELDS


@dataclass(frozen=True)
class Forbidden:
    """What must appear nowhere after a correction: raw ids and earlier pseudonyms (as values or
    list entries), earlier pseudonyms anywhere, screen names as a value or as a whole @handle."""

    ids: frozenset
    pseudonyms: frozenset
    screen_names: frozenset
    removed_ids: frozenset  # authors whose rows must be gone

    @property
    def cs_needles(self) -> list[bytes]:
        """Case-sensitive needles: every raw id and earlier pseudonym (removed_ids only adds the new
        pseudonym, which no parent can hold: it is checked on every rewritten record instead)."""
        return sorted({x.encode() for x in self.ids | self.pseudonyms if x})

    @property
    def ci_needles(self) -> list[bytes]:
        """Case-insensitive needles (lowercase): the screen names."""
        return sorted({x.encode().lower() for x in self.screen_names if x})


def traces(fields: list[str], cols: dict[str, int], fb: Forbidden, handle_re) -> list[str]:
    """Descriptions of every trace of a forbidden account in one parsed record."""
    found = []
    for name in ID_FIELDS:
        i = cols.get(name)
        if i is not None and fields[i] in fb.ids:
            found.append(f"{name} holds a corrected account's id")
    i = cols.get(MENTIONS_FIELD)
    if i is not None and any(x in fb.ids for x in csvio.list_entries(fields[i])):
        found.append(f"{MENTIONS_FIELD} lists a corrected account's id")
    i = cols.get("user_screen_name")
    if i is not None and fields[i].lower() in fb.screen_names:
        found.append("user_screen_name holds a corrected account's screen name")
    i = cols.get("tweet_text")
    if i is not None and handle_re is not None and handle_re.search(fields[i]):
        found.append("tweet_text mentions a corrected account's @handle")
    for n, v in enumerate(fields):
        for p in fb.pseudonyms:
            if p in v:
                found.append(f"column {n + 1} holds an earlier pseudonym")
    return found


class RewriteCheck:
    """Verification of one rewritten CSV file, block by block while it is written (no extra pass).

    For each block the rewriter hands over the parent's bytes, the bytes it writes,
    the edits it made and the offsets where it found needles. The check proves:
    - byte identity: a block without edits is written as the very same bytes; in a
      block with edits, every edit covers whole records (quote parity, LF ends, one
      record with the header's field count) and the written block equals the parent
      block with exactly those records replaced or dropped;
    - each rewritten record differs from its parent only in fields the rule may touch;
    - no trace: every record of the written bytes holding a forbidden needle is parsed
      and checked. In a block without edits the written bytes are the searched bytes,
      so the rewriter's search (over needles that include `cs_needles`/`ci_needles`)
      is reused; a block with edits is searched again here.
    """

    def __init__(self, fb: Forbidden, names: list[str], label: str):
        self.fb = fb
        self.label = label
        self.ncols = len(names)
        self.cols = {n: i for i, n in enumerate(names)}
        self.handle_re = handle_pattern(fb.screen_names)
        self.cs_needles = fb.cs_needles
        self.ci_needles = fb.ci_needles
        self._needles = Needles.of(self.cs_needles, self.ci_needles)
        self.problems: list[str] = []

    def block(self, old: bytes, new: bytes, edits: list, hits: list[int], offset: int) -> None:
        """Check one written block; `edits` are (start, end, new record | None) in old, `offset` is old's file offset."""
        if not edits:
            if new is not old and new != old:
                self.problems.append(f"{self.label}: untouched block at offset {offset} differs from the parent")
        else:
            self._edits(old, new, edits, offset)
            hits = self._needles.find(new)
        for s, e in hit_records(new, hits):
            self._traces(new[s:e], offset + s)

    def _edits(self, old: bytes, new: bytes, edits: list, offset: int) -> None:
        pieces = []
        pos = 0
        quotes = 0  # quotes in old[:pos]; a block starts a record
        for s, e, new_raw in edits:
            where = f"{self.label}: record at offset {offset + s}"
            if s < pos or e <= s or e > len(old):
                self.problems.append(f"{where}: edit out of order or out of the block")
                return
            quotes += old.count(b'"', pos, s)
            old_raw = old[s:e]
            if quotes & 1 or (s and old[s - 1] != 0x0A) or old_raw.count(b'"') & 1 or (e < len(old) and old[e - 1] != 0x0A):
                self.problems.append(f"{where}: edit is not a whole record")
            quotes += old_raw.count(b'"')
            pieces.append(old[pos:s])
            pos = e
            try:
                a = csvio.parse_record(old_raw)
            except csvio.CsvProblem as exc:
                self.problems.append(f"{where}: {exc.problem}")
                continue
            if len(a) != self.ncols:
                self.problems.append(f"{where}: edit does not cover exactly one record")
            if new_raw is None:
                continue
            pieces.append(new_raw)
            try:
                b = csvio.parse_record(new_raw)
            except csvio.CsvProblem as exc:
                self.problems.append(f"{where}: rewritten record: {exc.problem}")
                continue
            if len(a) != len(b):
                self.problems.append(f"{where}: record changed its number of fields")
                continue
            uid_i = self.cols.get("userid")
            if uid_i is not None and b[uid_i] in self.fb.removed_ids:
                self.problems.append(f"{where}: a removed account's row was rewritten, not removed")
            for name, i in self.cols.items():
                if name not in MUTABLE_FIELDS and a[i] != b[i]:
                    self.problems.append(f"{where}: column {name} changed")
        pieces.append(old[pos:])
        if b"".join(pieces) != new:
            self.problems.append(f"{self.label}: block at offset {offset} is not its parent with exactly the declared edits")

    def _traces(self, raw: bytes, at: int) -> None:
        try:
            fields = csvio.parse_record(raw)
        except csvio.CsvProblem as exc:
            self.problems.append(f"{self.label}: written record near offset {at}: {exc.problem}")
            return
        if len(fields) != self.ncols:
            self.problems.append(f"{self.label}: written record near offset {at} has {len(fields)} fields")
            return
        found = traces(fields, self.cols, self.fb, self.handle_re)
        uid_i = self.cols.get("userid")
        if uid_i is not None and uid_i < len(fields) and fields[uid_i] in self.fb.removed_ids:
            found.append("a removed account's row is still present")
        self.problems.extend(f"{self.label}: record near offset {at}: {t}" for t in found)


def verify_zip_rewrite(old_path, new_path, edits: list, fb: Forbidden, label: str) -> list[str]:
    """The new zip holds the parent's members in order, renamed/dropped only as declared, each with its
    parent's stored bytes (so its CRC still holds), local and central names agreeing, and no member name
    with a trace."""
    problems = []
    ren = dict(edits)
    with zipfile.ZipFile(old_path) as zo, zipfile.ZipFile(new_path) as zn:
        old_infos, new_infos = zo.infolist(), zn.infolist()
        old_spans = member_spans(old_infos, zo.start_dir)
    expect = []
    for info, span in zip(old_infos, old_spans):
        name = ren.get(info.filename, info.filename)
        if name is not None:
            expect.append((name, info.CRC, info.file_size, info.compress_size, info.compress_type, span))
    got = [(i.filename, i.CRC, i.file_size, i.compress_size, i.compress_type) for i in new_infos]
    if got != [x[:5] for x in expect]:
        return [f"{label}: members differ from the parent's with the declared renames"]
    old, new = map_file(old_path), map_file(new_path)
    for info, x in zip(new_infos, expect):
        name = info.filename
        at = _member_data(new, info.header_offset)
        was = _member_data(old, x[5][0])
        if at is None or was is None or at[0] != name.encode("utf-8"):
            problems.append(f"{label}: member {name}: local header missing or naming another member")
        elif not _same_bytes(new, at[1], old, was[1], info.compress_size):
            problems.append(f"{label}: member {name}: stored bytes differ from the parent's")
        account = split_member(name)[0]
        if account in fb.ids or any(p in fb.ids for p in name.split("/")) or any(p in name for p in fb.pseudonyms):
            problems.append(f"{label}: member name {name} holds a corrected account's id")
        if account in fb.removed_ids:
            problems.append(f"{label}: member {name} of a removed account is still present")
    return problems


def _member_data(buf, offset: int) -> tuple[bytes, int] | None:
    """(name in the local header, offset of the stored data) of the member whose local header is at offset."""
    head = bytes(buf[offset:offset + 30])
    if len(head) != 30 or head[:4] != b"PK\x03\x04":
        return None
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    return bytes(buf[offset + 30:offset + 30 + name_len]), offset + 30 + name_len + extra_len


def _same_bytes(a, i: int, b, j: int, n: int) -> bool:
    """a[i:i+n] == b[j:j+n] without copying large spans (numpy compares mapped memory in place)."""
    if i + n > len(a) or j + n > len(b):
        return False
    if n < 65536:
        return a[i:i + n] == b[j:j + n]
    return bool(np.array_equal(np.frombuffer(a, np.uint8, n, i), np.frombuffer(b, np.uint8, n, j)))


def full_scan(manifest: dict, blobs, progress: bool = False) -> tuple[list[str], int, int]:
    """Check every file of a release: presence, bytes, sha256, parseability, row counts; return
    (problems, files checked, bytes checked)."""
    problems = []
    files = 0
    nbytes = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(e["bytes"] for e in manifest["files"]), unit="B", unit_scale=True,
                   desc=f"verify {manifest['dataset']}", leave=False)
    rows_by_pair: dict[tuple, dict] = {}
    for e in manifest["files"]:
        label = f"{e['variant']}/{e['path']}"
        files += 1
        if not blobs.exists(e["sha256"]):
            problems.append(f"{label}: file missing from the store")
            continue
        h = hashlib.sha256()
        size = 0
        with blobs.open(e["sha256"]) as f:
            while chunk := f.read(csvio.CHUNK):
                h.update(chunk)
                size += len(chunk)
                if bar:
                    bar.update(len(chunk))
        nbytes += size
        if size != e["bytes"]:
            problems.append(f"{label}: {size} bytes, manifest says {e['bytes']}")
        if h.hexdigest() != e["sha256"]:
            problems.append(f"{label}: checksum mismatch")
            continue
        try:
            if e["kind"] == "media":
                with zipfile.ZipFile(blobs.local_path(e["sha256"])) as z:
                    rows = len(z.infolist())
                    bad = z.testzip()
                    if bad:
                        problems.append(f"{label}: member {bad} fails its CRC check")
            else:
                rows = 0
                with blobs.open(e["sha256"]) as f:
                    _, names, blocks = csvio.open_records(f)
                    for block, line in blocks:
                        rows += len(csvio.parse_block(block, line, len(names))[1])
        except csvio.CsvProblem as exc:
            problems.append(f"{label}: line {exc.line}: {exc.problem}")
            continue
        except zipfile.BadZipFile as exc:
            problems.append(f"{label}: unreadable zip: {exc}")
            continue
        if rows != e["rows"]:
            problems.append(f"{label}: {rows} rows, manifest says {e['rows']}")
        pair = (e["kind"], hashed_file_name(e["path"]) if e["variant"] == "unhashed" else e["path"])
        rows_by_pair.setdefault(pair, {})[e["variant"]] = rows
    for pair, by in rows_by_pair.items():
        if len(set(by.values())) > 1:
            problems.append(f"{pair[1]}: hashed and unhashed variants differ in row count {by}")
    if bar:
        bar.close()
    return problems, files, nbytes
