"""Zip archives at the byte level: read the central directory, copy members as stored, rename or drop some.

A correction renames or drops a few members of a media archive and keeps every
other member byte for byte. zipfile would build an object per member and write
the central directory anew; here the central directory is read into numpy arrays
(Directory: no Python step per member), only the members whose names hold one
of the batch's ids are looked at, and the directory is written back from the
parent's raw entries with the offsets patched in one vectorised step, so an
archive of thousands of members costs well under a millisecond beyond copying
its bytes. ZIP64 archives are read and written (offsets, sizes and counts past
the 32-bit limits).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, NamedTuple

from .search import Needles
from .store import Unmapper, map_file

if TYPE_CHECKING:  # numpy is imported where it is used: commands that never scan start without it
    import numpy as np

_EOCD = struct.Struct("<4s4H2LH")  # signature, disks, entries (disk, total), cd size, cd offset, comment length
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # the 46 fixed bytes of a central directory entry
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # the 30 fixed bytes of a local header
_OFFSET = struct.Struct("<L")  # the local header offset, the last 4 of the 46 bytes
_MAX16, _MAX32 = 0xFFFF, 0xFFFFFFFF
_COPY_CHUNK = 8 * 1024 * 1024  # unchanged members are written in pieces of this size at most
# The fixed fields of a central directory entry that the engine reads, as a numpy record of 46 bytes
# (the dtype's spec: numpy is imported where a directory is read, not with this module).
_CENTRAL_FIELDS = {"names": ["flags", "method", "crc", "csize", "usize", "nlen", "xlen", "clen", "offset"],
                   "formats": ["<u2", "<u2", "<u4", "<u4", "<u4", "<u2", "<u2", "<u2", "<u4"],
                   "offsets": [8, 10, 16, 20, 24, 28, 30, 32, 42], "itemsize": 46}


class BadZip(ValueError):
    """The bytes are not a zip archive this module can read (or one it may not rewrite: encrypted)."""


class Member(NamedTuple):
    """One central directory entry: what it says and its raw bytes (for an entry rebuilt on its own)."""

    name: str
    offset: int  # of the local header
    compress_size: int
    file_size: int
    crc: int
    method: int
    flags: int
    raw: bytes


class Directory:
    """A zip's central directory as arrays, one element per member in central directory order."""

    def __init__(self, cd: bytes, cd_offset: int, comment: bytes, pos: np.ndarray):
        import numpy as np
        self.cd, self.cd_offset, self.comment, self.pos = cd, cd_offset, comment, pos
        arr = np.frombuffer(cd, np.uint8)
        fields = np.dtype(_CENTRAL_FIELDS)
        f = arr[pos[:, None] + np.arange(_CENTRAL.size)].view(fields).ravel() if len(pos) else np.zeros(0, fields)
        self.flags, self.method, self.crc = (f[k].astype(np.int64) for k in ("flags", "method", "crc"))
        self.nlen = f["nlen"].astype(np.int64)
        self.end = pos + _CENTRAL.size + self.nlen + f["xlen"] + f["clen"]  # of each entry in cd
        self.usize, self.csize, self.offset = (f[k].astype(np.int64) for k in ("usize", "csize", "offset"))
        # Entries whose 32-bit fields defer to a ZIP64 extra field (rare: read one by one).
        self.zip64 = (self.usize == _MAX32) | (self.csize == _MAX32) | (self.offset == _MAX32)
        for i in np.flatnonzero(self.zip64).tolist():
            extra_at = pos[i] + _CENTRAL.size + self.nlen[i]
            self.usize[i], self.csize[i], self.offset[i] = _zip64_values(
                cd[extra_at:extra_at + int(f["xlen"][i])], int(self.usize[i]), int(self.csize[i]), int(self.offset[i]))

    def __len__(self) -> int:
        return len(self.pos)

    def raw(self, i: int) -> bytes:
        """Entry i's bytes in the central directory."""
        return self.cd[self.pos[i]:self.end[i]]

    def name(self, i: int) -> str:
        """Member i's name (UTF-8 when its flag says so, else CP437, as zipfile reads it)."""
        at = int(self.pos[i]) + _CENTRAL.size
        return _decode_name(self.cd[at:at + int(self.nlen[i])], int(self.flags[i]))

    def member(self, i: int) -> Member:
        """Entry i as a Member."""
        return Member(self.name(i), int(self.offset[i]), int(self.csize[i]), int(self.usize[i]), int(self.crc[i]),
                      int(self.method[i]), int(self.flags[i]), self.raw(i))

    def spans(self) -> tuple[np.ndarray, np.ndarray]:
        """(start, end) arrays of each member's local record (header, data, descriptor) in the archive:
        a record runs to the next local header in the file, the last one to the central directory."""
        import numpy as np
        order = np.argsort(self.offset, kind="stable")
        ends = np.empty_like(self.offset)
        ends[order] = np.append(self.offset[order][1:], self.cd_offset)
        return self.offset, ends

    def holding(self, needles: Iterable[bytes]) -> list[int]:
        """Entries whose bytes contain one of the needles (found with one search of the whole directory)."""
        import numpy as np
        hits = Needles.of(needles).find(self.cd)
        return sorted(set((np.searchsorted(self.pos, hits, "right") - 1).tolist())) if hits else []

    def changes(self, rename: Callable[[str], str | None], hint: Iterable[bytes] | None = None) -> dict[int, str | None]:
        """{entry: new name, or None when dropped} of every member rename() changes. `hint`: byte strings
        of which any name rename() changes holds one (ids, say); then only entries holding one are asked."""
        out = {}
        for i in range(len(self)) if hint is None else self.holding(hint):
            old = self.name(i)
            new = rename(old)
            if new != old:
                out[i] = new
        return out


def _decode_name(name_b: bytes, flags: int) -> str:
    if name_b.isascii():
        return name_b.decode("ascii")  # the usual case, and the same in both encodings
    return name_b.decode("utf-8" if flags & 0x800 else "cp437")


def read_directory(buf) -> Directory:
    """The central directory of the zip in buf (bytes or a mapping)."""
    n = len(buf)
    tail = bytes(buf[max(0, n - 65536 - _EOCD.size):])
    # The record is the signature whose comment length reaches exactly the end of the file: an
    # archive comment may itself hold the signature bytes, so a later match is not enough.
    at = len(tail)
    while True:
        at = tail.rfind(b"PK\x05\x06", 0, at)
        if at < 0:
            raise BadZip("no end of central directory record")
        if at + _EOCD.size <= len(tail):
            _, _, _, _, count, cd_size, cd_offset, comment_len = _EOCD.unpack_from(tail, at)
            if at + _EOCD.size + comment_len == len(tail):
                break
    comment = tail[at + _EOCD.size:at + _EOCD.size + comment_len]
    eocd_at = n - len(tail) + at
    if (count == _MAX16 or cd_offset == _MAX32 or cd_size == _MAX32) and eocd_at >= _EOCD64_LOCATOR.size:
        sig, _, z64_at, _ = _EOCD64_LOCATOR.unpack_from(bytes(buf[eocd_at - _EOCD64_LOCATOR.size:eocd_at]))
        if sig == b"PK\x06\x07":
            rec = bytes(buf[z64_at:z64_at + _EOCD64.size])
            if len(rec) != _EOCD64.size or rec[:4] != b"PK\x06\x06":
                raise BadZip("bad ZIP64 end of central directory record")
            _, _, _, _, _, _, _, count, cd_size, cd_offset = _EOCD64.unpack(rec)
    cd = bytes(buf[cd_offset:cd_offset + cd_size])
    if len(cd) != cd_size:
        raise BadZip("central directory past the end of the file")
    return Directory(cd, cd_offset, comment, _entry_positions(cd, count))


def _u16(arr: np.ndarray, at: np.ndarray) -> np.ndarray:
    import numpy as np
    return arr[at].astype(np.int64) | (arr[at + 1].astype(np.int64) << 8)


def _entry_positions(cd: bytes, count: int) -> np.ndarray:
    """Where each of the `count` entries starts in cd.

    Fast path: every entry signature found in one vectorised pass, accepted only if
    each one's lengths lead exactly to the next and the last ends the directory
    (then they are the entries). A signature inside a name, extra field or comment
    breaks that chain, and the entries are walked one by one instead.
    """
    import numpy as np
    arr = np.frombuffer(cd, np.uint8)
    if count and len(arr) >= _CENTRAL.size:
        sig = np.flatnonzero((arr[:-3] == 0x50) & (arr[1:-2] == 0x4B) & (arr[2:-1] == 1) & (arr[3:] == 2))
        if len(sig) == count and sig[0] == 0 and sig[-1] + _CENTRAL.size <= len(arr):
            nxt = sig + _CENTRAL.size + _u16(arr, sig + 28) + _u16(arr, sig + 30) + _u16(arr, sig + 32)
            if np.array_equal(nxt[:-1], sig[1:]) and nxt[-1] == len(arr):
                return sig.astype(np.int64)
    pos = []
    p = 0
    for k in range(count):
        if p + _CENTRAL.size > len(cd) or cd[p:p + 4] != b"PK\x01\x02":
            raise BadZip(f"bad central directory entry {k + 1}")
        pos.append(p)
        nlen, xlen, clen = struct.unpack_from("<3H", cd, p + 28)
        p += _CENTRAL.size + nlen + xlen + clen
    if p > len(cd):
        raise BadZip(f"central directory entry {count} runs past the directory")
    return np.array(pos, np.int64)


def _extra_fields(extra: bytes) -> list[tuple[int, bytes]]:
    out = []
    i = 0
    while i + 4 <= len(extra):
        hid, size = struct.unpack_from("<HH", extra, i)
        out.append((hid, extra[i + 4:i + 4 + size]))
        i += 4 + size
    return out


def zip64_only(extra: bytes) -> bytes:
    """The ZIP64 fields of an extra field block, without every other field (Unicode path, comments, times...)."""
    return b"".join(struct.pack("<HH", h, len(d)) + d for h, d in _extra_fields(extra) if h == 1)


def _zip64_values(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    """The real sizes and offset of an entry whose 32-bit fields say 0xFFFFFFFF."""
    for hid, data in _extra_fields(extra):
        if hid == 1:
            vals = list(struct.unpack_from(f"<{len(data) // 8}Q", data))
            if usize == _MAX32:
                usize = vals.pop(0)
            if csize == _MAX32:
                csize = vals.pop(0)
            if offset == _MAX32:
                offset = vals.pop(0)
            return usize, csize, offset
    raise BadZip("ZIP64 sizes announced without a ZIP64 extra field")


def central_entry(m: Member, name: str, offset: int, scrub: bool = False) -> bytes:
    """m's central directory entry with a new name and local header offset (ZIP64 where it must be);
    `scrub`: without its comment and every extra field but ZIP64 (they may repeat the old name)."""
    if name == m.name and not scrub and m.raw[42:46] != b"\xff\xff\xff\xff" and offset < _MAX32:
        return m.raw[:42] + _OFFSET.pack(offset) + m.raw[46:]  # the usual case: only the offset moves
    f = list(_CENTRAL.unpack_from(m.raw))
    nlen, xlen = f[12], f[13]
    extra = m.raw[_CENTRAL.size + nlen:_CENTRAL.size + nlen + xlen]
    comment = m.raw[_CENTRAL.size + nlen + xlen:]
    if scrub:
        extra, comment, f[14] = zip64_only(extra), b"", 0
    name_b = name.encode("utf-8")
    if not name.isascii():
        f[5] |= 0x800
    if f[18] == _MAX32 or offset >= _MAX32:
        # The offset lives in the ZIP64 extra field: rebuild it with the sizes it already carries.
        fields = _extra_fields(extra)
        sizes = [v for v, raw32 in ((m.file_size, f[11]), (m.compress_size, f[10])) if raw32 == _MAX32]
        z64 = struct.pack(f"<{len(sizes) + 1}Q", *sizes, offset)
        extra = b"".join(struct.pack("<HH", h, len(d)) + d for h, d in fields if h != 1)
        extra = struct.pack("<HH", 1, len(z64)) + z64 + extra
        f[18] = _MAX32
    else:
        f[18] = offset
    f[12], f[13] = len(name_b), len(extra)
    return _CENTRAL.pack(*f) + name_b + extra + comment


def end_records(count: int, cd_offset: int, cd_size: int, comment: bytes) -> bytes:
    """The end of central directory record, with the ZIP64 record and locator when a value needs them."""
    out = b""
    if count >= _MAX16 or cd_offset >= _MAX32 or cd_size >= _MAX32:
        z64_at = cd_offset + cd_size
        out = _EOCD64.pack(b"PK\x06\x06", _EOCD64.size - 12, 45, 45, 0, 0, count, count, cd_size, cd_offset)
        out += _EOCD64_LOCATOR.pack(b"PK\x06\x07", 0, z64_at, 1)
        count, cd_offset, cd_size = min(count, _MAX16), min(cd_offset, _MAX32), min(cd_size, _MAX32)
    return out + _EOCD.pack(b"PK\x05\x06", 0, 0, count, count, cd_size, cd_offset, len(comment)) + comment


def local_name_and_data(buf, offset: int) -> tuple[bytes, int] | None:
    """(name in the local header, offset of the stored data) of the local header at offset, or None."""
    head = bytes(buf[offset:offset + _LOCAL.size])
    if len(head) != _LOCAL.size or head[:4] != b"PK\x03\x04":
        return None
    name_len, extra_len = struct.unpack_from("<HH", head, 26)
    return bytes(buf[offset + 30:offset + 30 + name_len]), offset + 30 + name_len + extra_len


def local_extra(buf, offset: int) -> bytes:
    """The extra field block of the local header at offset (b"" when there is no local header there)."""
    head = bytes(buf[offset:offset + _LOCAL.size])
    if len(head) != _LOCAL.size or head[:4] != b"PK\x03\x04":
        return b""
    name_len, extra_len = struct.unpack_from("<HH", head, 26)
    return bytes(buf[offset + 30 + name_len:offset + 30 + name_len + extra_len])


def rewrite(src: Path, out, rename: Callable[[str], str | None],
            hint: Iterable[bytes] | None = None) -> list[tuple[str, str | None]]:
    """Write the zip at src to out (anything with write()) with members renamed or dropped by rename();
    return the (old name, new name | None) of every member changed, in directory order. `hint`: see
    Directory.changes. A renamed member loses its comment and every extra field but ZIP64, and the
    archive its comment: metadata an import would not have published (media.py).

    Member bytes are copied as stored, never decompressed: the parent's bytes between
    changed members go out as slices of the mapped file, a renamed member gets a new
    local header, and the directory is the parent's with the offsets patched.
    """
    import numpy as np
    mapped = map_file(src)
    buf = memoryview(mapped)
    unmap = Unmapper(mapped)
    d = read_directory(buf)
    changed = d.changes(rename, hint)
    start, end = d.spans()
    # How much each changed member's local record shrinks or grows.
    grow = np.zeros(len(d), np.int64)
    heads = {}  # entry -> its new local header and name
    for i, new in changed.items():
        if new is None:
            grow[i] = start[i] - end[i]
            continue
        if d.flags[i] & 0x1:
            raise BadZip(f"member {d.name(i)!r} is encrypted")
        head = bytes(buf[start[i]:start[i] + _LOCAL.size])
        if len(head) != _LOCAL.size or head[:4] != b"PK\x03\x04":
            raise BadZip(f"member {d.name(i)!r}: bad local header")
        f = list(_LOCAL.unpack(head))  # f[3]: flags, f[10]: name length, f[11]: extra length
        name_b = new.encode("utf-8")
        # The old extra fields may repeat the old name (Unicode path 0x7075): only ZIP64 sizes stay.
        at = int(start[i]) + _LOCAL.size + f[10]
        extra = zip64_only(bytes(buf[at:at + f[11]]))
        grow[i] = len(name_b) + len(extra) - f[10] - f[11]
        data_at = at + f[11]
        if not new.isascii():
            f[3] |= 0x800
        f[10], f[11] = len(name_b), len(extra)
        heads[i] = (_LOCAL.pack(*f) + name_b + extra, data_at)
    # Each member's new offset: its old one, moved by what the changed records before it gave up or added.
    first = int(start.min()) if len(d) else 0
    order = np.argsort(start, kind="stable")
    moved = np.empty(len(d), np.int64)
    moved[order] = np.cumsum(grow[order]) - grow[order]
    new_offset = start - first + moved

    written = 0

    def copy(a: int, b: int) -> None:
        nonlocal written
        for at in range(a, b, _COPY_CHUNK):
            out.write(buf[at:min(at + _COPY_CHUNK, b)])
            unmap.passed(at)
        written += max(0, b - a)

    cursor = first
    for i in sorted(changed, key=lambda i: start[i]):
        copy(cursor, int(start[i]))
        if i in heads:
            head, data_at = heads[i]
            out.write(head)
            out.write(buf[data_at:end[i]])  # extra field, data and descriptor as stored
            written += len(head) + int(end[i]) - data_at
        cursor = int(end[i])
    copy(cursor, d.cd_offset if len(d) else cursor)

    # The directory: the parent's entries with their offsets patched in one step; renamed and
    # ZIP64 entries (and any whose offset no longer fits 32 bits) are rebuilt one by one.
    cd = np.frombuffer(d.cd, np.uint8).copy()
    plain = ~d.zip64 & (new_offset < _MAX32)
    at = d.pos[plain]
    cd[at[:, None] + 42 + np.arange(4)] = new_offset[plain].astype("<u4").view(np.uint8).reshape(-1, 4)
    special = sorted(set(changed) | set(np.flatnonzero(~plain).tolist()))
    pieces, prev = [], 0
    for i in special:
        pieces.append(cd[prev:d.pos[i]].tobytes())
        new = changed[i] if i in changed else d.name(i)
        if new is not None:
            pieces.append(central_entry(d.member(i), new, int(new_offset[i]), scrub=i in changed))
        prev = int(d.end[i])
    pieces.append(cd[prev:].tobytes())
    central = b"".join(pieces)
    kept = len(d) - sum(1 for new in changed.values() if new is None)
    # The archive comment is dropped, as an import drops it (media.py): it may name an account.
    out.write(central + end_records(kept, written, len(central), b""))
    return [(d.name(i), changed[i]) for i in sorted(changed)]
