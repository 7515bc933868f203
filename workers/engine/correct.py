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

import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import csvio
from .handles import handle_pattern
from .search import Needles
from .store import map_file
from .hashing import split_member, IDENTITY_FIELDS, MENTIONS_FIELD, PROFILE_FIELDS, REFERENCE_FIELDS

DROP = object()  # row_fix result: the record leaves the file
# Window size of rewrite_csv: each window is passed over several times (quotes, search, write, hash),
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
        self.handle_re = handle_pattern(self.sn_map)
        # Needles for the byte search: case-sensitive ids, case-insensitive screen names.
        self.cs_needles = sorted({i.encode() for i in self.id_map if i})
        self.ci_needles = sorted({s.encode().lower() for s in self.sn_map if s})

    def fix_text(self, text: str) -> str:
        """Replace @handles of the targets and their earlier pseudonyms in a tweet_text."""
        if self.handle_re is not None and "@" in text:
            text = self.handle_re.sub(lambda m: "@" + self.sn_map[m.group(0)[1:].lower()], text)
        for old, new in self.pseudo_map.items():
            if old in text:
                text = text.replace(old, new)
        return text

    def row(self, fields: list[str], cols: dict[str, int]):
        """DROP, None (record not concerned) or the corrected fields."""
        new = list(fields)
        uid_i = cols.get("userid")
        if uid_i is not None:
            author = fields[uid_i]
            if author in self.removed:
                return DROP
            p = self.id_map.get(author)
            if p is not None:
                for name in IDENTITY_FIELDS:
                    i = cols.get(name)
                    if i is not None:
                        new[i] = p
                for name in PROFILE_FIELDS:
                    i = cols.get(name)
                    if i is not None:
                        new[i] = ""
        for name in REFERENCE_FIELDS:
            i = cols.get(name)
            if i is not None and fields[i] in self.id_map:
                new[i] = self.id_map[fields[i]]
        i = cols.get(MENTIONS_FIELD)
        if i is not None and fields[i] not in ("", "[]"):
            new[i] = csvio.list_replace(fields[i], self.id_map)
        i = cols.get("tweet_text")
        if i is not None:
            new[i] = self.fix_text(fields[i])
        return None if new == fields else new

    def member(self, name: str) -> str | None:
        """New media member name, or None when the member leaves the archive."""
        account, rest = split_member(name)
        if account in self.removed:
            return None
        p = self.id_map.get(account)
        return p + rest if p else name


def hit_records(block: bytes, hits: list[int]):
    """Yield (s, e) of each distinct record of block holding a hit, in order."""
    cur = 0
    for h in hits:
        if h < cur:
            continue
        s, e = csvio.record_span(block, cur, h)
        yield s, e
        cur = e


@dataclass
class FileChange:
    """What rewriting one file did."""

    rows_removed: int = 0
    rows_rewritten: int = 0
    edits: list = field(default_factory=list)  # (old_start, old_end, new bytes | None) for CSV; (old, new|None) names for zips
    header_len: int = 0


def rewrite_csv(src, out, fix: Corrector, on_change: Callable | None = None, check=None) -> FileChange:
    """Copy the CSV in src (bytes or an mmap of the parent file) to out (None: dry run) with the batch applied.

    One pass over windows of whole records: one search for the needles (the
    corrector's and the check's); a window without a hit is written straight from
    src (no copy, no parse); in a window with hits only the records holding one
    are parsed. `check` (a verify.RewriteCheck) sees each parent window, the bytes
    written in its place, the edits and the hits, while they are in memory.
    """
    header_end, names = csvio.header(src)
    cols = {n: i for i, n in enumerate(names)}
    cs, ci = fix.cs_needles, fix.ci_needles
    if check is not None:
        cs, ci = cs + check.cs_needles, ci + check.ci_needles
    needles = Needles.of(cs, ci)
    ch = FileChange(header_len=header_end)
    view = memoryview(src)
    if out is not None:
        out.write(view[:header_end])
    for a, b in csvio.record_windows(src, header_end, REWRITE_CHUNK):
        window = view[a:b]
        hits = needles.find(window)
        if not hits:
            # Nothing of the batch here: the parent's bytes are written as they are.
            if check is not None:
                check.block(window, window, [], hits, a)
            if out is not None:
                out.write(window)
            continue
        block = bytes(window)
        edits = []  # (start, end, new record | None) within block
        for s, e in hit_records(block, hits):
            raw = block[s:e]
            try:
                fields = csvio.parse_record(raw)
            except csvio.CsvProblem as exc:
                raise csvio.CsvProblem(0, f"record at byte offset {a + s}: {exc.problem}") from None
            res = fix.row(fields, cols)
            if res is None:
                continue  # a decoy: the needle is not a reference of the account
            new_raw = None if res is DROP else csvio.encode_record(res, csvio.terminator(raw))
            edits.append((s, e, new_raw))
            if on_change is not None:
                on_change(fields, cols, None if res is DROP else res)
        if edits:
            pieces = []
            pos = 0
            for s, e, new_raw in edits:
                pieces.append(block[pos:s])
                if new_raw is not None:
                    pieces.append(new_raw)
                pos = e
            pieces.append(block[pos:])
            new_block = b"".join(pieces)
        else:
            new_block = block  # only decoys: the parent's bytes themselves
        if check is not None:
            check.block(block, new_block, edits, hits, a)
        if out is not None:
            out.write(new_block)
        for s, e, new_raw in edits:
            ch.edits.append((a + s, a + e, new_raw))
            if new_raw is None:
                ch.rows_removed += 1
            else:
                ch.rows_rewritten += 1
    return ch


class _Tail:
    """Where zipfile writes the central directory: collected in memory, then given to out in one write."""

    def __init__(self, pos: int):
        self.pos = pos
        self.parts: list[bytes] = []

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        self.pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        pass


def member_spans(infos: list[zipfile.ZipInfo], cd_start: int) -> list[tuple[int, int]]:
    """[start, end) of each member's local record (header, data, descriptor) in the archive."""
    starts = sorted(i.header_offset for i in infos)
    end_of = dict(zip(starts, starts[1:] + [cd_start]))
    return [(i.header_offset, end_of[i.header_offset]) for i in infos]


def write_zip(src: Path, out, rename: Callable[[str], str | None]) -> FileChange:
    """Write the zip at src to out (a HashingWriter) with members renamed or dropped by rename().

    Member bytes are copied as stored, never decompressed: runs of unchanged members
    go out as one slice of the mapped parent, a renamed member gets a new local
    header, and zipfile writes the central directory (verify.verify_zip_rewrite
    re-reads the result).
    """
    with zipfile.ZipFile(src) as zin:
        infos, cd_start, comment = zin.infolist(), zin.start_dir, zin.comment
    buf = memoryview(map_file(src))
    ch = FileChange()
    kept = []
    pos = 0  # bytes written so far
    run = None  # [start, end) of parent bytes not written yet, to go out in one piece

    def flush() -> None:
        nonlocal run, pos
        if run is not None:
            out.write(buf[run[0]:run[1]])
            pos += run[1] - run[0]
            run = None

    for info, (start, end) in zip(infos, member_spans(infos, cd_start)):
        new = rename(info.filename)
        if new != info.filename:
            ch.edits.append((info.filename, new))
            if new is None:
                ch.rows_removed += 1
                continue
            ch.rows_rewritten += 1
        zi = info  # parsed for this call only: updated in place for the new central directory
        if new == info.filename:
            if run is not None and run[1] == start:
                zi.header_offset = pos + run[1] - run[0]
                run[1] = end
            else:
                flush()
                zi.header_offset = pos
                run = [start, end]
        else:
            flush()
            head = bytes(buf[start:start + 30])
            if len(head) != 30 or head[:4] != b"PK\x03\x04" or info.flag_bits & 0x1:
                raise zipfile.BadZipFile(f"member {info.filename!r}: bad local header or encrypted")
            (flags,) = struct.unpack("<H", head[6:8])
            name_len, extra_len = struct.unpack("<HH", head[26:30])
            raw_name = new.encode("utf-8")
            if not new.isascii():
                flags |= 0x800  # the name is UTF-8
                zi.flag_bits |= 0x800
            zi.filename = zi.orig_filename = new
            zi.header_offset = pos
            out.write(head[:6] + struct.pack("<H", flags) + head[8:26]
                      + struct.pack("<HH", len(raw_name), extra_len) + raw_name)
            data_at = start + 30 + name_len
            out.write(buf[data_at:end])  # extra field, data and descriptor as stored
            pos += 30 + len(raw_name) + end - data_at
        kept.append(zi)
    flush()
    tail = _Tail(pos)  # no seek(): zipfile writes straight on
    zout = zipfile.ZipFile(tail, "w")
    zout.filelist, zout.start_dir, zout.comment = kept, pos, comment
    zout.close()  # the central directory and the end records
    out.write(b"".join(tail.parts))
    return ch


def scan_zip(zin: zipfile.ZipFile, rename: Callable[[str], str | None]) -> FileChange:
    """Dry run of write_zip: which members would be renamed or dropped."""
    ch = FileChange()
    for info in zin.infolist():
        new = rename(info.filename)
        if new != info.filename:
            ch.edits.append((info.filename, new))
            if new is None:
                ch.rows_removed += 1
            else:
                ch.rows_rewritten += 1
    return ch
