"""Zip archives at the byte level: read the central directory, copy members as stored, rename or drop some.

A correction renames or drops a few members of a media archive and keeps every
other member byte for byte. zipfile would build an object per member and write
the central directory anew; here the central directory is read with one struct
call per entry and written back from the parent's raw entries with only the
offset (and, for a renamed member, the name) patched, so an archive of thousands
of members costs about a millisecond beyond copying its bytes. ZIP64 archives are
read and written (offsets, sizes and counts past the 32-bit limits).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Callable, NamedTuple

from .store import Unmapper, map_file

_EOCD = struct.Struct("<4s4H2LH")  # signature, disks, entries (disk, total), cd size, cd offset, comment length
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # the 46 fixed bytes of a central directory entry
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # the 30 fixed bytes of a local header
_OFFSET = struct.Struct("<L")  # the local header offset, the last 4 of the 46 bytes
_MAX16, _MAX32 = 0xFFFF, 0xFFFFFFFF
_COPY_CHUNK = 8 * 1024 * 1024  # unchanged members are written in pieces of this size at most


class BadZip(ValueError):
    """The bytes are not a zip archive this module can read (or one it may not rewrite: encrypted)."""


class Member(NamedTuple):
    """One central directory entry: what it says and its raw bytes (a tuple: archives hold thousands)."""

    name: str
    offset: int  # of the local header
    compress_size: int
    file_size: int
    crc: int
    method: int
    flags: int
    raw: bytes


def read_members(buf) -> tuple[list[Member], int, bytes]:
    """(members in central directory order, offset of the central directory, archive comment) of buf."""
    n = len(buf)
    tail = bytes(buf[max(0, n - 65536 - _EOCD.size):])
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(tail):
        raise BadZip("no end of central directory record")
    _, _, _, _, count, cd_size, cd_offset, comment_len = _EOCD.unpack_from(tail, at)
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
    members = []
    pos = 0
    for _ in range(count):
        if pos + _CENTRAL.size > len(cd) or cd[pos:pos + 4] != b"PK\x01\x02":
            raise BadZip(f"bad central directory entry {len(members) + 1}")
        f = _CENTRAL.unpack_from(cd, pos)
        flags, method, crc, csize, usize, nlen, xlen, clen, disk, offset = (
            f[5], f[6], f[9], f[10], f[11], f[12], f[13], f[14], f[15], f[18])
        end = pos + _CENTRAL.size + nlen + xlen + clen
        raw = cd[pos:end]
        name_b = raw[_CENTRAL.size:_CENTRAL.size + nlen]
        if _MAX32 in (usize, csize, offset):
            usize, csize, offset = _zip64_values(raw[_CENTRAL.size + nlen:_CENTRAL.size + nlen + xlen],
                                                 usize, csize, offset)
        try:
            name = name_b.decode("ascii")  # the usual case, and the same in both encodings
        except UnicodeDecodeError:
            name = name_b.decode("utf-8" if flags & 0x800 else "cp437")
        members.append(Member(name, offset, csize, usize, crc, method, flags, raw))
        pos = end
    return members, cd_offset, comment


def _extra_fields(extra: bytes) -> list[tuple[int, bytes]]:
    out = []
    i = 0
    while i + 4 <= len(extra):
        hid, size = struct.unpack_from("<HH", extra, i)
        out.append((hid, extra[i + 4:i + 4 + size]))
        i += 4 + size
    return out


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


def central_entry(m: Member, name: str, offset: int) -> bytes:
    """m's central directory entry with a new name and local header offset (ZIP64 where it must be)."""
    if name == m.name and m.raw[42:46] != b"\xff\xff\xff\xff" and offset < _MAX32:
        return m.raw[:42] + _OFFSET.pack(offset) + m.raw[46:]  # the usual case: only the offset moves
    f = list(_CENTRAL.unpack_from(m.raw))
    nlen, xlen = f[12], f[13]
    extra = m.raw[_CENTRAL.size + nlen:_CENTRAL.size + nlen + xlen]
    comment = m.raw[_CENTRAL.size + nlen + xlen:]
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


def member_spans(members: list[Member], cd_offset: int) -> list[tuple[int, int]]:
    """[start, end) of each member's local record (header, data, descriptor) in the archive."""
    starts = sorted(m.offset for m in members)
    end_of = dict(zip(starts, starts[1:] + [cd_offset]))
    return [(m.offset, end_of[m.offset]) for m in members]


def local_name_and_data(buf, offset: int) -> tuple[bytes, int] | None:
    """(name in the local header, offset of the stored data) of the local header at offset, or None."""
    head = bytes(buf[offset:offset + _LOCAL.size])
    if len(head) != _LOCAL.size or head[:4] != b"PK\x03\x04":
        return None
    name_len, extra_len = struct.unpack_from("<HH", head, 26)
    return bytes(buf[offset + 30:offset + 30 + name_len]), offset + 30 + name_len + extra_len


def rewrite(src: Path, out, rename: Callable[[str], str | None]) -> list[tuple[str, str | None]]:
    """Write the zip at src to out (anything with write()) with members renamed or dropped by rename();
    return the (old name, new name | None) of every member changed.

    Member bytes are copied as stored, never decompressed: runs of unchanged members
    go out as one slice of the mapped parent, a renamed member gets a new local header.
    """
    mapped = map_file(src)
    buf = memoryview(mapped)
    unmap = Unmapper(mapped)
    members, cd_offset, comment = read_members(buf)
    changed = []
    central = []
    pos = 0  # bytes written so far
    run = None  # [start, end) of parent bytes not written yet, to go out in one piece

    def flush() -> None:
        nonlocal run, pos
        if run is not None:
            for at in range(run[0], run[1], _COPY_CHUNK):
                out.write(buf[at:min(at + _COPY_CHUNK, run[1])])
                unmap.passed(at)
            pos += run[1] - run[0]
            run = None

    for m, (start, end) in zip(members, member_spans(members, cd_offset)):
        new = rename(m.name)
        if new != m.name:
            changed.append((m.name, new))
            if new is None:
                continue
        if new == m.name:
            if run is not None and run[1] == start:
                central.append(central_entry(m, new, pos + run[1] - run[0]))
                run[1] = end
            else:
                flush()
                central.append(central_entry(m, new, pos))
                run = [start, end]
            continue
        flush()
        if m.flags & 0x1:
            raise BadZip(f"member {m.name!r} is encrypted")
        head = bytes(buf[start:start + _LOCAL.size])
        if len(head) != _LOCAL.size or head[:4] != b"PK\x03\x04":
            raise BadZip(f"member {m.name!r}: bad local header")
        f = list(_LOCAL.unpack(head))  # f[3]: flags, f[10]: name length
        name_len = f[10]
        name_b = new.encode("utf-8")
        if not new.isascii():
            f[3] |= 0x800
        f[10] = len(name_b)
        central.append(central_entry(m, new, pos))
        out.write(_LOCAL.pack(*f) + name_b)
        data_at = start + _LOCAL.size + name_len
        out.write(buf[data_at:end])  # extra field, data and descriptor as stored
        pos += _LOCAL.size + len(name_b) + end - data_at
    flush()
    cd = b"".join(central)
    out.write(cd + end_records(len(central), pos, len(cd), comment))
    return changed
