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

Files are rewritten at near-copy speed in one pass: large blocks are searched
for the needles (ids, pseudonyms, screen names case-insensitively) with
bytes.find, spans without a hit are copied verbatim, and only records holding a
hit are parsed; a hit that is not a real reference (decoy) leaves the record
untouched. Verification rides along on the same blocks (verify.RewriteCheck).
"""

from __future__ import annotations

import os
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

from . import csvio
from .handles import handle_pattern
from .hashing import split_member, IDENTITY_FIELDS, MENTIONS_FIELD, PROFILE_FIELDS, REFERENCE_FIELDS

DROP = object()  # row_fix result: the record leaves the file
# Block size of rewrite_csv: each block is passed over several times (quotes, lower, finds, hash),
# so a block that stays in the CPU cache beats a large one, and a hit re-checks less (measured: 1 MiB best).
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


def find_hits(block: bytes, cs: list[bytes], ci: list[bytes]) -> list[int]:
    """Sorted offsets in block where any needle starts (screen names matched case-insensitively)."""
    hits = []
    for hay, needles in ((block, cs), (block.lower() if ci else b"", ci)):
        for n in needles:
            i = hay.find(n)
            while i >= 0:
                hits.append(i)
                i = hay.find(n, i + 1)
    hits.sort()
    return hits


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


def rewrite_csv(src: BinaryIO, out, fix: Corrector, on_change: Callable | None = None, check=None) -> FileChange:
    """Copy src to out (None: dry run) with the batch applied, in one pass; untouched bytes are copied verbatim.

    Per block of whole records: one search for the needles (the corrector's and the
    check's), a parse of only the records holding a hit, and the block written as is
    when no record changed. `check` (a verify.RewriteCheck) sees each parent block,
    the block written in its place, the edits and the hits, while they are in memory.
    """
    header, names, blocks = csvio.open_records(src, chunk=REWRITE_CHUNK, lines=False)
    cols = {n: i for i, n in enumerate(names)}
    cs, ci = fix.cs_needles, fix.ci_needles
    if check is not None:
        cs = sorted(set(cs) | set(check.cs_needles))
        ci = sorted(set(ci) | set(check.ci_needles))
    ch = FileChange(header_len=len(header))
    if out is not None:
        out.write(header)
    offset = len(header)
    for block, _ in blocks:
        hits = find_hits(block, cs, ci)
        edits = []  # (start, end, new record | None) within block
        for s, e in hit_records(block, hits):
            raw = block[s:e]
            try:
                fields = csvio.parse_record(raw)
            except csvio.CsvProblem as exc:
                raise csvio.CsvProblem(0, f"record at byte offset {offset + s}: {exc.problem}") from None
            res = fix.row(fields, cols)
            if res is None:
                continue  # a decoy: the needle is not a reference of the account
            new_raw = None if res is DROP else csvio.encode_record(res, csvio.terminator(raw))
            edits.append((s, e, new_raw))
            if on_change is not None:
                on_change(fields, cols, None if res is DROP else res)
        if edits:
            mv = memoryview(block)
            pieces = []
            pos = 0
            for s, e, new_raw in edits:
                pieces.append(mv[pos:s])
                if new_raw is not None:
                    pieces.append(new_raw)
                pos = e
            pieces.append(mv[pos:])
            new_block = b"".join(pieces)
        else:
            new_block = block  # nothing changed: the parent's bytes themselves
        if check is not None:
            check.block(block, new_block, edits, hits, offset)
        if out is not None:
            out.write(new_block)
        for s, e, new_raw in edits:
            ch.edits.append((offset + s, offset + e, new_raw))
            if new_raw is None:
                ch.rows_removed += 1
            else:
                ch.rows_rewritten += 1
        offset += len(block)
    return ch


def write_zip(zin: zipfile.ZipFile, out_path: Path, rename: Callable[[str], str | None]) -> FileChange:
    """Write a copy of zin to out_path with members renamed or dropped by rename(); contents unchanged."""
    ch = FileChange()
    with open(out_path, "wb") as fh:
        with zipfile.ZipFile(fh, "w") as zout:
            for info in zin.infolist():
                new = rename(info.filename)
                if new != info.filename:
                    ch.edits.append((info.filename, new))
                if new is None:
                    ch.rows_removed += 1
                    continue
                if new != info.filename:
                    ch.rows_rewritten += 1
                zi = zipfile.ZipInfo(new, date_time=info.date_time)
                zi.compress_type = info.compress_type
                zi.external_attr = info.external_attr
                zi.comment = info.comment
                zi.create_system = info.create_system
                zi.CRC, zi.compress_size, zi.file_size = info.CRC, info.compress_size, info.file_size
                # Only names change: the member's stored bytes are copied as they are, without
                # decompressing and recompressing (verify.verify_zip_rewrite re-reads them by CRC).
                zi.header_offset = fh.tell()
                fh.write(zi.FileHeader())
                _copy_member_data(zin, info, fh)
                zout.filelist.append(zi)
                zout.NameToInfo[zi.filename] = zi
            zout.start_dir = fh.tell()  # where close() writes the central directory
        fh.flush()
        os.fsync(fh.fileno())
    return ch


def _copy_member_data(zin: zipfile.ZipFile, info: zipfile.ZipInfo, out: BinaryIO) -> None:
    """Copy the stored (possibly compressed) bytes of one member of zin to out."""
    src = zin.fp
    src.seek(info.header_offset)
    head = src.read(30)
    if len(head) != 30 or head[:4] != b"PK\x03\x04" or info.flag_bits & 0x1:
        raise zipfile.BadZipFile(f"member {info.filename!r}: bad local header or encrypted")
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    src.seek(info.header_offset + 30 + name_len + extra_len)
    left = info.compress_size
    while left:
        chunk = src.read(min(left, csvio.CHUNK))
        if not chunk:
            raise zipfile.BadZipFile(f"member {info.filename!r}: truncated data")
        out.write(chunk)
        left -= len(chunk)


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
