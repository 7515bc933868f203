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

import functools
import hashlib
import re
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import csvio, media, zips
from .correct import hit_records
from .handles import handle_pattern
from .search import Needles
from .store import map_file
from .hashing import split_member, hashed_file_name, IDENTITY_FIELDS, MENTIONS_FIELD, PROFILE_FIELDS, REFERENCE_FIELDS

if TYPE_CHECKING:  # numpy is imported where it is used: commands that never scan start without it
    import numpy as np

# Fields a correction may change in a record it keeps; every other field must stay equal.
MUTABLE_FIELDS = set(IDENTITY_FIELDS) | set(PROFILE_FIELDS) | set(REFERENCE_FIELDS) | {MENTIONS_FIELD, "tweet_text"}
ID_FIELDS = ("userid",) + REFERENCE_FIELDS


@dataclass(frozen=True, eq=False)
class Forbidden:
    """What must appear nowhere after a correction: raw ids and earlier pseudonyms (as values or
    list entries), earlier pseudonyms anywhere, screen names as a value or as a whole @handle.

    Compared and hashed by identity (the caches below key on the object: comparing thousands of ids
    per lookup cost more than what they cache). An import's unhashed variant passes a growing set as
    `pseudonyms` (importer._Job.old_pseudonyms), so nothing derived from it is cached."""

    ids: frozenset
    pseudonyms: frozenset
    screen_names: frozenset
    removed_ids: frozenset  # authors whose rows must be gone

    @property
    def odd_pseudonyms(self) -> tuple:
        """The pseudonyms not of hashing.pseudonym's shape (none, in practice): holds_pseudonym's `odd`."""
        n = len(self.pseudonyms)
        cached = self.__dict__.get("_odd")
        if cached is None or cached[0] != n:  # `pseudonyms` only grows: its size says whether it changed
            cached = (n, tuple(p for p in self.pseudonyms if len(p) != 44 or p.find("=") != 43))
            self.__dict__["_odd"] = cached
        return cached[1]

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
    if fb.pseudonyms:
        for n, v in enumerate(fields):
            if ("=" in v or fb.odd_pseudonyms) and holds_pseudonym(v, fb.pseudonyms, fb.odd_pseudonyms):
                found.append(f"column {n + 1} holds an earlier pseudonym")
    return found


def holds_pseudonym(v: str, pseudonyms, odd=()) -> bool:
    """Whether v contains one of `pseudonyms`: each is 44 characters ending in its only '=' (hashing.pseudonym),
    so a set lookup of the 44 characters up to each '=' finds them, however many there are; `odd`: those
    of another shape, looked for one by one."""
    if any(p in v for p in odd):
        return True
    k = v.find("=", 43)
    while k >= 0:
        if v[k - 43:k + 1] in pseudonyms:
            return True
        k = v.find("=", k + 1)
    return False


class RewriteCheck:
    """Verification of one rewritten CSV file, window by window while it is written (no extra pass).

    For each window src[a:b] of the parent the rewriter hands over the edits it
    made, the offsets where its search found needles and the pieces it writes in
    the window's place (parent ranges and new records). The check proves:
    - byte identity: the parent ranges written and the edited spans tile the window
      exactly, in order, and the new records written are the edits' own;
    - every edit covers one whole record (quote parity from the window start, LF
      ends, the header's field count), and each rewritten record differs from its
      parent only in fields the rule may touch;
    - no trace: every new record is searched for the forbidden needles, and every
      parent record written holding one (the rewriter searched for a superset of
      `cs_needles`/`ci_needles`) is parsed and checked.
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

    def window(self, src, a: int, b: int, edits: list, hits: list[int], pieces: list) -> None:
        """Check what is written for src[a:b] (src[a] begins a record); edits are (start, end, new | None)."""
        spans = sorted([p for p in pieces if isinstance(p, tuple)] + [(s, e) for s, e, _ in edits])
        starts = [a] + [e for _, e in spans]
        tiled = all(s == prev and e > s for (s, e), prev in zip(spans, starts)) and starts[-1] == b
        if not tiled or [p for p in pieces if not isinstance(p, tuple)] != [n for _, _, n in edits if n is not None]:
            self.problems.append(f"{self.label}: window at offset {a} is not written as its parent "
                                 "with exactly the declared edits")
            return
        quotes = 0  # in src[a:pos]
        pos = a
        for s, e, new_raw in edits:
            quotes += csvio.count_quotes(src, pos, s)
            old_raw = bytes(src[s:e])
            where = f"{self.label}: record at offset {s}"
            if quotes & 1 or (s > a and src[s - 1] != 0x0A) or old_raw.count(b'"') & 1 or (
                    e < b and src[e - 1] != 0x0A):
                self.problems.append(f"{where}: edit is not a whole record")
            quotes += old_raw.count(b'"')
            pos = e
            self._edit(old_raw, new_raw, where)
            if new_raw is not None and self._needles.find(new_raw):
                self._traces(new_raw, s)
        written = [h for h in hits if not any(s <= h < e for s, e, _ in edits)]
        for s, e in hit_records(src, written, a):
            self._traces(bytes(src[s:e]), s)

    def _edit(self, old_raw: bytes, new_raw: bytes | None, where: str) -> None:
        """One edit: the parent record parses to one record; a rewritten one changed only mutable fields."""
        a = self._parse(old_raw, where)
        if a is None:
            return
        if len(a) != self.ncols:
            self.problems.append(f"{where}: edit does not cover exactly one record")
        if new_raw is None:
            return
        b = self._parse(new_raw, f"{where}: rewritten record")
        if b is None:
            return
        if len(a) != len(b):
            self.problems.append(f"{where}: record changed its number of fields")
            return
        uid_i = self.cols.get("userid")
        if uid_i is not None and b[uid_i] in self.fb.removed_ids:
            self.problems.append(f"{where}: a removed account's row was rewritten, not removed")
        for name, i in self.cols.items():
            if name not in MUTABLE_FIELDS and a[i] != b[i]:
                self.problems.append(f"{where}: column {name} changed")

    def _parse(self, raw: bytes, where: str) -> list[str] | None:
        """The record's fields, or None with the problem noted."""
        try:
            return csvio.parse_record(raw)
        except csvio.CsvProblem as exc:
            self.problems.append(f"{where}: {exc.problem}")
            return None

    def _traces(self, raw: bytes, at: int) -> None:
        fields = self._parse(raw, f"{self.label}: written record near offset {at}")
        if fields is None:
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
    """The new zip holds the parent's members in order, renamed/dropped only as declared: every kept
    member's local record is the parent's byte for byte (a renamed one but for its name, which must match
    the central directory's), so CRCs still hold; and no member name holds a trace. Only members whose
    names hold one of fb's ids may have been changed (a correction changes no other account's media)."""
    import numpy as np
    problems = []
    ren = dict(edits)
    old, new = map_file(old_path), map_file(new_path)
    try:
        od, nd = zips.read_directory(old), zips.read_directory(new)
    except zips.BadZip as exc:
        return [f"{label}: unreadable zip: {exc}"]
    differ = [f"{label}: members differ from the parent's with the declared renames"]
    # The declared members, among the entries holding an id: every name a correction changes holds one.
    changed = {}  # parent entry -> new name | None
    for i in od.holding(fb.cs_needles):
        if (name := od.name(i)) in ren:
            changed[i] = ren[name]
    kept = np.ones(len(od), bool)
    kept[[i for i, n in changed.items() if n is None]] = False
    keep = np.flatnonzero(kept)  # the parent entry of each new one
    if len(changed) != len(ren) or len(keep) != len(nd) or not all(
            np.array_equal(getattr(od, f)[keep], getattr(nd, f)) for f in ("crc", "usize", "csize", "method")):
        return differ
    # Entries renamed, or with a ZIP64 extra field (their offsets live there), are compared field by field;
    # every other entry must be the parent's byte for byte but for its offset.
    renamed = np.isin(keep, [i for i, n in changed.items() if n is not None])
    special = renamed | od.zip64[keep] | nd.zip64
    for j in np.flatnonzero(special).tolist():
        if nd.name(j) != changed.get(int(keep[j]), od.name(int(keep[j]))):
            return differ
    plain = np.flatnonzero(~special)
    if not _same_entries(od, keep[plain], nd, plain):
        return differ
    (os_, oe), (ns, ne) = od.spans(), nd.spans()
    os_, oe = os_[keep], oe[keep]
    # Members kept as they were: their local records must be the parent's, byte for byte. Records that
    # follow each other in both files are compared in one go (runs end where a member was changed).
    same = np.flatnonzero(~renamed)
    sized = (oe - os_)[same] == (ne - ns)[same]
    for j in same[~sized][:20].tolist():
        problems.append(f"{label}: member {nd.name(j)}: its record changed size")
    same = same[sized]
    if len(same):
        joined = (np.diff(same) == 1) & (ns[same][1:] == ne[same][:-1]) & (os_[same][1:] == oe[same][:-1])
        firsts = same[np.concatenate(([True], ~joined))]
        lasts = same[np.concatenate((~joined, [True]))]
        for a, b in zip(firsts.tolist(), lasts.tolist()):
            if not _same_bytes(new, int(ns[a]), old, int(os_[a]), int(ne[b] - ns[a])):
                problems.append(f"{label}: stored bytes from offset {int(ns[a])} differ from the parent's")
    for j in np.flatnonzero(renamed).tolist():
        name, n0, o0 = nd.name(j), int(ns[j]), int(os_[j])
        at, was = zips.local_name_and_data(new, n0), zips.local_name_and_data(old, o0)
        if at is None or was is None or at[0] != name.encode("utf-8"):
            problems.append(f"{label}: member {name}: local header missing or naming another member")
        elif not (_same_bytes(new, n0 + 8, old, o0 + 8, 18)
                  and zips.local_extra(new, n0) == zips.zip64_only(zips.local_extra(old, o0))
                  and _same_bytes(new, at[1], old, was[1], int(ne[j]) - at[1])
                  and int(ne[j]) - at[1] == int(oe[j]) - was[1]):
            problems.append(f"{label}: member {name}: stored bytes differ from the parent's")
    problems += media.metadata_traces(new, fb.ids, fb.screen_names, fb.pseudonyms, label)  # every metadata byte
    # Every trace in a name contains an id or pseudonym: one search of the directory finds the few to look at.
    for j in nd.holding(sorted({x.encode() for x in fb.ids | fb.pseudonyms | fb.removed_ids if x})):
        name = nd.name(j)
        account = split_member(name)[0]
        if account in fb.ids or any(p in fb.ids for p in name.split("/")) or any(p in name for p in fb.pseudonyms):
            problems.append(f"{label}: member name {name} holds a corrected account's id")
        if account in fb.removed_ids:
            problems.append(f"{label}: member {name} of a removed account is still present")
    return problems


def _same_entries(a, ai: np.ndarray, b, bi: np.ndarray) -> bool:
    """Entries ai of directory a and bi of directory b are pairwise equal byte for byte, except for
    their 4-byte local header offsets (compared in one go, as masked arrays of the two directories)."""
    import numpy as np
    la, lb = (a.end - a.pos)[ai], (b.end - b.pos)[bi]
    if not np.array_equal(la, lb):
        return False
    picked = []
    for d, idx in ((a, ai), (b, bi)):
        sel = np.zeros(len(d), bool)
        sel[idx] = True
        mask = np.zeros(len(d.cd), bool)
        mask[:int(d.end[-1]) if len(d) else 0] = np.repeat(sel, d.end - d.pos) if len(d) else []
        mask[(d.pos[idx][:, None] + 42 + np.arange(4)).ravel()] = False
        picked.append(np.frombuffer(d.cd, np.uint8)[mask])
    return bool(np.array_equal(*picked))


def _same_bytes(a, i: int, b, j: int, n: int) -> bool:
    """a[i:i+n] == b[j:j+n] without copying large spans (numpy compares mapped memory in place)."""
    import numpy as np
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


class _HandleSet:
    """`search(text)`: whether text mentions one of many screen names as a whole @handle (a set lookup
    per handle: a regex alternation of thousands of names costs thousands of tries per '@')."""

    _TOKEN = re.compile(r"@([A-Za-z0-9_]+)")

    def __init__(self, names):
        self.names = frozenset(n.lower() for n in names)

    def search(self, text: str) -> bool:
        return "@" in text and any(m.lower() in self.names for m in self._TOKEN.findall(text))


def verify_import_file(path, kind: str, fb: Forbidden, label: str) -> list[str]:
    """Prove a file an import wrote holds no trace of `fb` (before release 1 is published).

    CSV: one needle search over every byte (ids exactly, screen names caselessly); each record
    holding a hit is parsed and checked: no forbidden id as a value or list entry, no forbidden
    screen name as a value or whole @handle, no earlier pseudonym anywhere, no row authored by a
    removed account. Media: no member name holds a forbidden id as its account.
    """
    problems: list[str] = []
    if not (fb.ids or fb.pseudonyms or fb.screen_names or fb.removed_ids):
        return problems  # nothing is forbidden (the unhashed variant of an import without a ledger)
    if kind == "media":
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                account = split_member(name)[0]
                if account in fb.ids or account in fb.removed_ids or any(p in name for p in fb.pseudonyms):
                    problems.append(f"{label}: member name {name} holds an id that must not be published")
        return problems
    with open(path, "rb") as f:
        try:
            header, names, blocks = csvio.open_records(f, 4 * 1024 * 1024)
        except csvio.CsvProblem:
            return [f"{label}: empty file"]
        check = _import_check(fb, tuple(names))
        offset = len(header)
        for block, _ in blocks:
            for at, fields in check.block(block):
                found = traces(fields, check.cols, fb, check.handle_re)
                if check.uid_i is not None and fields[check.uid_i] in fb.removed_ids:
                    found.append("a removed account's row is present")
                problems.extend(f"{label}: record at byte {offset + at}: {t}" for t in found)
                if len(problems) > 20:
                    return problems
            offset += len(block)
    return problems


@functools.lru_cache(maxsize=4)
def _import_check(fb: Forbidden, names: tuple) -> "_ImportCheck":
    """The _ImportCheck of fb for files with these columns, built once per import and variant (the
    caller passes the same fb object for every file of a variant: the cache compares it by identity)."""
    return _ImportCheck(fb, list(names))


_ID_RUN = re.compile(rb"[A-Za-z0-9+/=_]+")  # every id and pseudonym is such a run where it is a list entry
_HANDLE_B = re.compile(rb"@([A-Za-z0-9_]+)")


@functools.lru_cache(maxsize=4)
def _fb_sets(fb: Forbidden):
    """What _ImportCheck looks up, built once per Forbidden (every file of a variant shares it; a cache
    hit compares fb by identity). Not the pseudonyms: an import's unhashed variant's set grows."""
    handle_re = _HandleSet(fb.screen_names)
    ids_b = frozenset(x.encode() for x in fb.ids)
    # Handles are ASCII: a name with other characters is never one (and _HandleSet agrees).
    names_b = frozenset(n.encode() for n in handle_re.names if n.isascii())
    all_ids_b = ids_b | frozenset(x.encode() for x in fb.removed_ids)
    # Every id a run of id characters (a list entry is then a whole run): one regex over them all.
    runs_ok = b"" not in ids_b and _ID_RUN.fullmatch(b"".join(ids_b) or b"0") is not None
    return handle_re, ids_b, names_b, all_ids_b, runs_ok, _value_keys(ids_b), _value_keys(all_ids_b)


_KEY_MUL = 0x9E3779B97F4A7C15  # odd: spreads a value's length over the key's bits


def _value_keys(values) -> "np.ndarray":
    """Sorted uint64 keys of byte strings: their first 8 bytes (zero-padded) plus length times _KEY_MUL,
    as _column_keys computes them for a column's values. Equal values have equal keys."""
    import numpy as np

    vals = list(values)
    if not vals:
        return np.zeros(0, np.uint64)
    heads = np.array(vals, "S8").view("<u8")  # NumPy's S8 keeps the first 8 bytes, zero-padded
    lens = np.fromiter(map(len, vals), np.uint64, len(vals))
    return np.unique(heads + lens * np.uint64(_KEY_MUL))


def _column_keys(b, opens, closes) -> "np.ndarray":
    """_value_keys of the values between each (open, close) quote pair of a canonical block (`b`: its
    bytes as uint8), computed for all records with one numpy gather."""
    import numpy as np

    start = opens + 1
    lens = closes - start
    idx = np.minimum(start[:, None] + np.arange(8), len(b) - 1)
    heads = np.where(np.arange(8) < lens[:, None], b[idx], 0).astype(np.uint8)
    return np.ascontiguousarray(heads).view("<u8").ravel() + lens.astype(np.uint64) * np.uint64(_KEY_MUL)


class _ImportCheck:
    """The records of a written file that may hold a trace of `fb`, found with set lookups per block.

    A block in canonical form (csvio.canonical_fields) is checked column-wise: the id fields' values
    (all records at once: a numpy key of each value's length and first 8 bytes is looked up in the
    forbidden ids' keys with np.isin, and only the values passing are compared whole), the screen
    names, every run of id characters in the mention lists (an id listed as an entry is one), every
    @handle and, when there are earlier pseudonyms, the 44 bytes up to every '='. Only records
    something is found in are parsed (and `traces` decides). Any other block is parsed with the csv
    module and every record goes to `traces`.
    """

    def __init__(self, fb: Forbidden, names: list[str]):
        self.fb = fb
        self.ncols = len(names)
        self.cols = {n: i for i, n in enumerate(names)}
        self.uid_i = self.cols.get("userid")
        (self.handle_re, self.ids_b, self.names_b, self.all_ids_b, self.runs_ok, self.id_keys,
         self.all_id_keys) = _fb_sets(fb)

    def block(self, block: bytes):
        """(offset in block, fields) of each record to look at."""
        import numpy as np

        fb = self.fb
        if not (fb.ids or fb.removed_ids or fb.screen_names or fb.pseudonyms):
            return
        pseudos_b = _live_pseudonyms(fb)  # an import's unhashed variant's set grows while it is written
        f = csvio.canonical_fields(block, self.ncols)
        if f is None or fb.odd_pseudonyms or (fb.ids and not self.runs_ok):
            records = csvio.split_records(block)
            _, parsed = csvio.parse_block(block, 0, self.ncols)
            at = 0
            for raw, fields in zip(records, parsed):
                yield at, fields
                at += len(raw)
            return
        O, C = f.opens, f.closes
        flagged = set()
        b = np.frombuffer(block, np.uint8)

        def values(c, rows=None):
            o, e = (O[:, c], C[:, c]) if rows is None else (O[rows, c], C[rows, c])
            vals = csvio.spans(block, o + 1, e)
            if f.inner_quotes(c).any():
                vals = [v.replace(b'""', b'"') for v in vals]
            return vals

        for name in ID_FIELDS:
            c = self.cols.get(name)
            # The author may be neither a forbidden id nor a removed account's; a reference may be a
            # removed account's new pseudonym (correct.py maps references to removed accounts so).
            ids_b, keys = (self.all_ids_b, self.all_id_keys) if name == "userid" else (self.ids_b, self.id_keys)
            if c is None or not ids_b:
                continue
            got = _column_keys(b, O[:, c], C[:, c])
            at = np.minimum(np.searchsorted(keys, got), len(keys) - 1)
            hit = keys[at] == got
            inner = f.inner_quotes(c)
            if inner.any():  # a value with a doubled quote inside is not spelt as its bytes: looked at
                hit |= inner
            rows = np.flatnonzero(hit)
            if len(rows):
                vals = values(c, rows)
                flagged.update(int(r) for r, v in zip(rows, vals) if v in ids_b)
        c = self.cols.get(MENTIONS_FIELD)
        if c is not None and self.ids_b:
            joined = csvio.spans(block, O[:, c] + 1, C[:, c], joined=True)
            if not self.ids_b.isdisjoint(_ID_RUN.findall(joined)):
                for i, v in enumerate(values(c)):
                    if not self.ids_b.isdisjoint(_ID_RUN.findall(v)):
                        flagged.add(i)
        c = self.cols.get("user_screen_name")
        if c is not None and fb.screen_names:
            vals = values(c)
            if any(v.decode("utf-8").lower() in fb.screen_names for v in set(vals)):
                flagged.update(i for i, v in enumerate(vals) if v.decode("utf-8").lower() in fb.screen_names)
        ends = f.ends
        if self.handle_re.names and any(h.lower() in self.names_b for h in set(_HANDLE_B.findall(block))):
            for m in _HANDLE_B.finditer(block):
                if m.group(1).lower() in self.names_b:
                    flagged.add(int(np.searchsorted(ends, m.start(), side="right")))
        if pseudos_b:
            for k in pseudonym_ends(block, pseudos_b, compiled=True):
                flagged.add(int(np.searchsorted(ends, k, side="right")))
        starts = [0] + ends[:-1].tolist()
        for i in sorted(flagged):
            yield starts[i], csvio.parse_record(block[starts[i]:int(ends[i])])


def pseudonym_ends(block: bytes, pseudos, compiled: bool = False) -> list[int]:
    """Offsets of the '=' ending each of `pseudos` (44 bytes, bytes) found in block: the first 8 of the
    44 bytes up to every '=' are gathered with one numpy index as one uint64 each and looked up in the
    pseudonyms' first 8 bytes (sorted once: a binary search each, not np.isin's sort of both arrays per
    block); only the few windows passing are compared whole.

    `compiled`: a caller whose set does not change between calls (a written file's pass) has up to
    NEEDLES_MAX pseudonyms searched as Hyperscan literals instead (search.Needles, compiled once per set):
    a hashed block's many '=' (every pseudonym ends with one) cost the window scan several times more."""
    import numpy as np

    if not pseudos or b"=" not in block:
        return []
    if compiled and len(pseudos) <= NEEDLES_MAX:
        from .search import Needles

        return [k + 43 for k in Needles.of(_whole_pseudonyms(pseudos)).find(block)]
    keys = _heads(pseudos)
    b = np.frombuffer(block, np.uint8)
    eq = np.flatnonzero(b == 0x3D)
    eq = eq[eq >= 43]
    if not len(eq) or not len(keys):
        return []
    heads = np.ascontiguousarray(b[(eq - 43)[:, None] + np.arange(8)]).view("<u8").ravel()
    cand = eq[keys[np.minimum(np.searchsorted(keys, heads), len(keys) - 1)] == heads]
    return [k for k in cand.tolist() if block[k - 43:k + 1] in pseudos]


def _heads(pseudos) -> "np.ndarray":
    """The first 8 bytes of each 44-byte pseudonym (bytes) as sorted distinct uint64s, cached per set and size."""
    import numpy as np

    key = (id(pseudos), len(pseudos))
    got = _HEADS.get(key)
    if got is None or got[0] is not pseudos:
        arr = np.unique(np.frombuffer(b"".join(p[:8] for p in pseudos if len(p) == 44), "<u8"))
        got = _HEADS[key] = (pseudos, arr)
        while len(_HEADS) > 8:
            _HEADS.pop(next(iter(_HEADS)))
    return got[1]


_HEADS: dict = {}
# Up to this many pseudonyms compile in milliseconds (about 7 ms for 150, 1.3 s for 20,000).
NEEDLES_MAX = 2000


@functools.lru_cache(maxsize=8)
def _whole_pseudonyms(pseudos: frozenset) -> frozenset:
    """The 44-byte members of a set of pseudonyms (bytes): what the window scan can find."""
    return frozenset(p for p in pseudos if len(p) == 44)


@functools.lru_cache(maxsize=4)
def _block_sets(fb: Forbidden):
    """(ASCII screen names as bytes, _HandleSet, ids and removed ids, the ASCII screen names as str) of
    fb, once per import (fb is compared by identity; its pseudonyms may grow, so they are not among these).
    The names are _fb_sets' (built once for both: an import checks each variant both ways)."""
    handle_re, _, names_b = _fb_sets(fb)[:3]
    return names_b, handle_re, fb.ids | fb.removed_ids, frozenset(n for n in handle_re.names if n.isascii())


def _live_pseudonyms(fb: Forbidden) -> frozenset:
    """fb's earlier pseudonyms as bytes (rebuilt when the growing set of an import has grown)."""
    n = len(fb.pseudonyms)
    cached = fb.__dict__.get("_pseudos_b")
    if cached is None or cached[0] != n:
        cached = (n, frozenset(p.encode() for p in fb.pseudonyms))
        fb.__dict__["_pseudos_b"] = cached
    return cached[1]


@functools.lru_cache(maxsize=64)
def _spellings(handles: frozenset) -> re.Pattern:
    """A regex finding each of these @handle spellings (bytes) as a whole handle, as _HANDLE_B reads one."""
    alt = b"|".join(re.escape(h) for h in sorted(handles, key=len, reverse=True))
    return re.compile(rb"@(?:" + alt + rb")(?![A-Za-z0-9_])")


def import_block_traces(fb: Forbidden, cols: dict[str, int], block: bytes, ends, uids: list[str], sns: list[str],
                        refs: tuple, replaced: set, label: str, handles: tuple | None = None,
                        base: int = 0) -> list[str]:
    """Traces of fb in what a byte-level import writes for one block of the unhashed variant, checked on
    the block it read (fastimport): every record not in `replaced` is written as read, so its author
    id and screen name (`uids`, `sns`, one per record), the ids it refers to (`refs`: (records, ids),
    two parallel sequences: record refs[0][k] refers to id refs[1][k] by a reference or a mention
    entry), every @handle and every 44 bytes up to a '=' of the block are looked up in sets; the
    @handles are `handles` when given ((records, runs): the lowercased run of handle characters
    after each '@' inside a tweet text, what `traces` reads there, as fastimport has them), else
    read from the block; a record something is found in is parsed and
    `traces` decides. The records in `replaced` are removed or written anew: the caller proves the new
    ones with `rewritten_traces`. Problems name the records by offset, `base` (the block's offset in its
    file) added to those of the block's own records."""
    import numpy as np

    flagged = set()
    names, handle_re, ids, names_s = _block_sets(fb)
    pseudos = _live_pseudonyms(fb)
    # Where a set holds some value of a column, its records are picked by a C-level membership test per
    # value: a ledger's decided authors are in most blocks, so these run on every block.
    if not ids.isdisjoint(uids):
        flagged.update(np.flatnonzero(np.fromiter(map(ids.__contains__, uids), np.bool_, len(uids))).tolist())
    if fb.screen_names:
        bad = {s for s in set(sns) if s.lower() in fb.screen_names}
        if bad:
            flagged.update(np.flatnonzero(np.fromiter(map(bad.__contains__, sns), np.bool_, len(sns))).tolist())
    recs, vals = refs
    if not fb.ids.isdisjoint(vals):
        flagged.update(int(r) for r, v in zip(recs, vals) if v in fb.ids)
    if handles is not None:
        bad = names_s.intersection(handles[1])
        if bad:  # the marks holding one, picked with a C-level membership test per mark
            hit = np.fromiter(map(bad.__contains__, handles[1]), np.bool_, len(handles[1]))
            flagged.update(np.asarray(handles[0], np.int64)[hit].tolist())
    elif names:
        bad = frozenset(h for h in set(_HANDLE_B.findall(block)) if h.lower() in names)
        if bad:  # where they are: one scan for just those spellings
            at = [m.start() for m in _spellings(bad).finditer(block)]
            flagged.update(np.searchsorted(ends, at, side="right").tolist())
    at = pseudonym_ends(block, pseudos)
    if at:
        flagged.update(np.searchsorted(ends, at, side="right").tolist())
    for p in fb.odd_pseudonyms:  # none in practice: looked for one by one
        at = block.find(p.encode())
        while at >= 0:
            flagged.add(int(np.searchsorted(ends, at, side="right")))
            at = block.find(p.encode(), at + 1)
    flagged -= replaced
    records = []
    if flagged:
        starts = [0] + ends[:-1].tolist()
        records = [(base + starts[i], block[starts[i]:int(ends[i])]) for i in sorted(flagged)]
    return _record_traces(fb, cols, records, label)


def rewritten_traces(fb: Forbidden, cols: dict[str, int], rewritten: list, label: str) -> list[str]:
    """Traces of fb in records an import wrote anew (`rewritten`: (offset, new record) pairs, from one block
    or from many): joined, they are checked as a written file's block is (_ImportCheck: one column-wise
    pass over all of them); only when something is found are they parsed and checked one by one."""
    if not rewritten:
        return []
    joined = b"".join(r if r.endswith(b"\n") else r + b"\n" for _, r in rewritten)
    header = [""] * len(cols)
    for name, i in cols.items():
        header[i] = name
    if next(iter(_import_check(fb, tuple(header)).block(joined)), None) is None:
        return []
    return _record_traces(fb, cols, rewritten, label)


def _record_traces(fb: Forbidden, cols: dict[str, int], records: list, label: str) -> list[str]:
    """`traces` of each (offset, raw record), a removed account's row included."""
    handle_re = _block_sets(fb)[1]
    uid_i = cols.get("userid")
    problems = []
    for at, raw in records:
        fields = csvio.parse_record(raw)
        found = traces(fields, cols, fb, handle_re)
        if uid_i is not None and fields[uid_i] in fb.removed_ids:
            found.append("a removed account's row is present")
        problems.extend(f"{label}: record read at byte {at}: {t}" for t in found)
    return problems
