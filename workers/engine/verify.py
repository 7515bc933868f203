"""Verification: the section-5 invariant and byte-identity of a correction, and full scans of releases.

Before a correction publishes, every REWRITTEN file is scanned fully: its bytes
must equal the parent file with exactly the declared records replaced or
removed (each a whole record of the parent, changed only in the fields the
rule may touch), its checksum must match, its row count must equal the parent's
minus the removed rows, and no trace of the accounts may remain in it. Files a
correction does not rewrite are shared blobs: they are proven by sha256
equality with the parent release plus the account index showing that they
hold no row of, and no reference to, the batch's accounts.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from . import csvio
from .correct import find_hits, hit_records
from .handles import handle_pattern
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
        return sorted({x.encode() for x in self.ids | self.pseudonyms if x})

    @property
    def ci_needles(self) -> list[bytes]:
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


def scan_csv_for_traces(f: BinaryIO, fb: Forbidden, label: str) -> list[str]:
    """Search a whole CSV file for traces; candidate records are parsed, decoys pass."""
    problems = []
    handle_re = handle_pattern(fb.screen_names)
    _, names, blocks = csvio.open_records(f)
    cols = {n: i for i, n in enumerate(names)}
    for block, line in blocks:
        for s, e in hit_records(block, find_hits(block, fb.cs_needles, fb.ci_needles)):
            fields = csvio.parse_record(block[s:e], line)
            found = traces(fields, cols, fb, handle_re)
            if cols.get("userid") is not None and fields[cols["userid"]] in fb.removed_ids:
                found.append("a removed account's row is still present")
            if found:  # the line number is only worth counting when there is something to report
                lineno = line + block.count(b"\n", 0, s)
                problems.extend(f"{label} line {lineno}: {t}" for t in found)
    return problems


def verify_csv_rewrite(old: BinaryIO, new: BinaryIO, edits: list, header_len: int, label: str) -> tuple[list[str], str, int]:
    """Prove new == old with exactly `edits` applied, each on a whole record and touching only
    mutable fields; return (problems, sha256 of new, bytes of new)."""
    problems = []
    h = hashlib.sha256()
    nbytes = 0
    pos = 0  # offset in old
    quotes = 0  # quotes in old[:pos]
    last = b"\n"
    cols = None

    def compare(length: int) -> None:
        nonlocal pos, quotes, last, nbytes
        while length > 0:
            a = old.read(min(length, csvio.CHUNK))
            b = new.read(len(a))
            if not a:
                problems.append(f"{label}: parent file ended early")
                return
            if a != b:
                problems.append(f"{label}: untouched bytes differ near offset {pos}")
            h.update(b)
            nbytes += len(b)
            quotes += a.count(b'"')
            last = a[-1:]
            pos += len(a)
            length -= len(a)

    head = old.read(header_len)
    old.seek(0)
    names = csvio.parse_record(head)
    cols = {n: i for i, n in enumerate(names)}
    for s, e, new_raw in edits:
        if s < header_len or s < pos:
            problems.append(f"{label}: edit at {s} overlaps the header or a previous edit")
            break
        compare(s - pos)
        if quotes & 1 or last != b"\n":
            problems.append(f"{label}: edit at offset {s} does not start a record")
        old_raw = old.read(e - s)
        pos = e
        quotes += old_raw.count(b'"')
        last = old_raw[-1:]
        if new_raw is None:
            continue
        got = new.read(len(new_raw))
        h.update(got)
        nbytes += len(got)
        if got != new_raw:
            problems.append(f"{label}: rewritten record at offset {s} differs from the one verified")
            continue
        try:
            a = csvio.parse_record(old_raw)
            b = csvio.parse_record(new_raw)
        except csvio.CsvProblem as exc:
            problems.append(f"{label}: record at offset {s}: {exc.problem}")
            continue
        if len(a) != len(b):
            problems.append(f"{label}: record at offset {s} changed its number of fields")
            continue
        for name, i in cols.items():
            if name not in MUTABLE_FIELDS and a[i] != b[i]:
                problems.append(f"{label}: record at offset {s}: column {name} changed")
    # The rest of the file must be the parent's tail, byte for byte.
    while True:
        a = old.read(csvio.CHUNK)
        b = new.read(len(a)) if a else b""
        if not a:
            break
        if a != b:
            problems.append(f"{label}: untouched bytes differ near offset {pos}")
        h.update(b)
        nbytes += len(b)
        pos += len(a)
    extra = new.read()
    if extra:
        problems.append(f"{label}: {len(extra)} unexpected trailing bytes")
        h.update(extra)
        nbytes += len(extra)
    return problems, h.hexdigest(), nbytes


def verify_zip_rewrite(old_path, new_path, edits: list, fb: Forbidden, label: str) -> list[str]:
    """The new zip holds the parent's members in order, renamed/dropped only as declared, same
    contents (CRC, size, verified by reading), and no member name with a trace."""
    problems = []
    ren = dict(edits)
    with zipfile.ZipFile(old_path) as zo, zipfile.ZipFile(new_path) as zn:
        expect = []
        for info in zo.infolist():
            name = ren.get(info.filename, info.filename)
            if name is not None:
                expect.append((name, info.CRC, info.file_size))
        got = [(i.filename, i.CRC, i.file_size) for i in zn.infolist()]
        if got != expect:
            problems.append(f"{label}: members differ from the parent's with the declared renames")
        bad = zn.testzip()
        if bad:
            problems.append(f"{label}: member {bad} fails its CRC check")
        for name, _, _ in got:
            account = split_member(name)[0]
            if account in fb.ids or any(p in fb.ids for p in name.split("/")) or any(p in name for p in fb.pseudonyms):
                problems.append(f"{label}: member name {name} holds a corrected account's id")
            if account in fb.removed_ids:
                problems.append(f"{label}: member {name} of a removed account is still present")
    return problems


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
