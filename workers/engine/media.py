"""Media archives: what a member may be, the normalised archive an import publishes, and the metadata trace scan.

A master archive may carry identifying bytes outside its member names: member
comments, extra fields (the Info-ZIP Unicode path 0x7075 repeats the name; 0x6375
a comment), an archive comment, local-header names that differ from the central
directory, hidden local records, data descriptors. An import therefore never
copies an archive: read_archive() checks it and refuses what cannot be made safe,
and write_archive() writes every variant anew from the checked names and the
members' stored bytes, with nothing else:

- refused (MediaRefused names archive, member and problem): a name that is not
  exactly `<userid>/images/<tweetid>-<n>.<ext>` (`..`, a backslash, an absolute
  path, a directory entry are named as such), a name given twice in the central
  directory, a local header missing or naming another member, two members sharing
  a local record, bytes that belong to no member (a local record the central
  directory does not list, say), a data descriptor that disagrees with the
  central directory, an encrypted member;
- normalised (dropped): member comments, every extra field (a ZIP64 field is
  written anew when a size or offset needs one), data descriptors (the local
  header carries the CRC and sizes), the archive comment; the fixed fields are
  rebuilt from the data (version, flags, attributes: a regular file, mode 0644),
  only the method and the DOS time are kept.

metadata_traces() is the proof both at import (the hashed variant) and after a
correction (verify.verify_zip_rewrite): it reads every byte of an archive that is
not a member's stored data.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

from .hashing import split_member
from .store import Unmapper, map_file
from .zips import BadZip, Directory, end_records, read_directory

# THE member name rule: account (a user id), the literal `images`, tweet id, media number, extension.
MEMBER_NAME = re.compile(r"([0-9]+)/images/([0-9]+)-([0-9]+)\.([A-Za-z0-9]{1,10})")
_LOCAL = struct.Struct("<4s5H3L2H")  # signature, version, flags, method, time, date, crc, csize, usize, nlen, xlen
# The same 30 bytes as a NumPy record (little-endian, unaligned), for many local headers at once.
_LOCAL_FIELDS = [("sig", "S4"), ("version", "<u2"), ("flags", "<u2"), ("method", "<u2"), ("time", "<u2"),
                 ("date", "<u2"), ("crc", "<u4"), ("csize", "<u4"), ("usize", "<u4"), ("nlen", "<u2"), ("xlen", "<u2")]
_LOCAL_SIG = b"PK\x03\x04"
_CENTRAL = struct.Struct("<4s6H3L5H2L")  # made by, needed, flags, method, time, date, crc, csize, usize, lens..., offset
_MAX32 = 0xFFFFFFFF
_KEPT_FLAGS = 0x0006  # compression options (deflate level, LZMA end marker): they describe the stored data
_ENCRYPTED = 0x0001 | 0x0040 | 0x2000  # traditional or strong encryption, masked central directory
_DESCRIPTOR = 0x0008
_EXTERNAL = 0o100644 << 16  # a regular file, rw-r--r--
_COPY_CHUNK = 8 * 1024 * 1024


class MediaRefused(ValueError):
    """An archive an import may not publish: names the archive, the member (if one) and the problem."""

    def __init__(self, archive: str, problem: str, member: int | None = None, name: str | None = None):
        self.archive, self.problem, self.member, self.name = archive, problem, member, name
        where = f"member {member} {name!r}: " if member is not None else ""
        super().__init__(f"{archive}: {where}{problem}")


class Stored(NamedTuple):
    """One checked member: its name and where its stored (compressed) bytes are."""

    name: str
    data_at: int
    csize: int
    usize: int
    crc: int
    method: int
    flags: int
    time: int
    date: int


class Archive:
    """A checked master archive, mapped: its members in central directory order."""

    def __init__(self, path: Path, buf, members: list[Stored]):
        self.path, self.buf, self.members = path, buf, members

    @property
    def names(self) -> list[str]:
        """The member names, in central directory order."""
        return [m.name for m in self.members]


def member_problem(name: str, accounts: Iterable[str] = ()) -> str | None:
    """Why `name` is not a member name an archive may hold (None when it is one). `accounts`: account
    parts allowed besides user ids (the pseudonyms a re-derived master already holds; they may hold '/')."""
    if MEMBER_NAME.fullmatch(name):
        return None
    account, rest = split_member(name)
    if account in accounts and MEMBER_NAME.fullmatch("0" + rest):
        return None
    if "\\" in name:
        return "a backslash in the name (names are <userid>/images/<tweetid>-<n>.<ext>)"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "an absolute path (names are <userid>/images/<tweetid>-<n>.<ext>)"
    if ".." in name.split("/"):
        return "'..' in the name (names are <userid>/images/<tweetid>-<n>.<ext>)"
    if name.endswith("/"):
        return "a directory entry (an archive holds only <userid>/images/<tweetid>-<n>.<ext> files)"
    return "name is not <userid>/images/<tweetid>-<n>.<ext>"


def member_account(name: str) -> str:
    """The account part (a user id, or an allowed pseudonym) of a checked member name."""
    return split_member(name)[0]


def _name(d: Directory, i: int) -> str:
    """Member i's name; bytes that are not text in its encoding are shown as U+FFFD (such a name is refused)."""
    try:
        return d.name(i)
    except UnicodeDecodeError:
        at = int(d.pos[i]) + _CENTRAL.size
        return d.cd[at:at + int(d.nlen[i])].decode("utf-8", "replace")


def _local_header(buf, offset: int):
    head = bytes(buf[offset:offset + _LOCAL.size])
    if len(head) != _LOCAL.size or head[:4] != _LOCAL_SIG:
        return None
    return _LOCAL.unpack(head)


def read_archive(path: Path, accounts: Iterable[str] = ()) -> Archive:
    """Check the master archive at path member by member; raise MediaRefused on the first problem.
    `accounts`: see member_problem."""
    accounts = frozenset(accounts)
    path = Path(path)
    label = path.name
    try:
        buf = map_file(path)
        d = read_directory(buf)
    except (BadZip, OSError, ValueError) as e:
        raise MediaRefused(label, f"not a readable zip archive ({e})") from None
    members: list[Stored] = []
    seen: dict[bytes, int] = {}
    records = []  # (start, end, member number) of each local record
    for i in range(len(d)):
        n = i + 1
        raw = d.raw(i)
        f = _CENTRAL.unpack_from(raw)
        nlen = f[10]
        name_b = raw[_CENTRAL.size:_CENTRAL.size + nlen]
        name = _name(d, i)
        if name_b in seen:
            raise MediaRefused(label, f"the name is given twice in the central directory (also member {seen[name_b]})",
                               n, name)
        seen[name_b] = n
        if (problem := member_problem(name, accounts)) is not None:
            raise MediaRefused(label, problem, n, name)
        if d.flags[i] & _ENCRYPTED:
            raise MediaRefused(label, "the member is encrypted", n, name)
        offset, csize = int(d.offset[i]), int(d.csize[i])
        lf = _local_header(buf, offset)
        if lf is None:
            raise MediaRefused(label, f"no local header at offset {offset}", n, name)
        lname = bytes(buf[offset + _LOCAL.size:offset + _LOCAL.size + lf[9]])
        if lname != name_b:
            raise MediaRefused(label, f"its local header names {lname.decode('utf-8', 'replace')!r}, "
                                      "not the central directory's name", n, name)
        if lf[3] != int(d.method[i]):
            raise MediaRefused(label, "its local header and the central directory give different methods", n, name)
        data_at = offset + _LOCAL.size + lf[9] + lf[10]
        end = data_at + csize
        if end > d.cd_offset:
            raise MediaRefused(label, "its stored data runs into the central directory", n, name)
        if lf[2] & _DESCRIPTOR:
            end = _descriptor_end(buf, end, d, i, label, n, name)
        records.append((offset, end, n))
        members.append(Stored(name, data_at, csize, int(d.usize[i]), int(d.crc[i]), int(d.method[i]),
                              int(d.flags[i]), f[5], f[6]))
    _check_tiling(buf, records, d, label, members)
    return Archive(path, buf, members)


def _descriptor_end(buf, at: int, d: Directory, i: int, label: str, n: int, name: str) -> int:
    """Where the data descriptor after a member's data ends; it must repeat the central directory's values."""
    want = (int(d.crc[i]), int(d.csize[i]), int(d.usize[i]))
    for sig in (b"PK\x07\x08", b""):
        if sig and bytes(buf[at:at + 4]) != sig:
            continue
        p = at + len(sig)
        for fmt in ("<3L", "<L2Q"):
            size = struct.calcsize(fmt)
            if p + size <= d.cd_offset and struct.unpack_from(fmt, bytes(buf[p:p + size])) == want:
                return p + size
    raise MediaRefused(label, "its data descriptor disagrees with the central directory", n, name)


def _check_tiling(buf, records: list, d: Directory, label: str, members: list[Stored]) -> None:
    """The local records must cover the bytes before the central directory exactly: no byte belongs to no
    member (a hidden local record would be published with the archive), no two members share one."""
    pos = 0
    for start, end, n in sorted(records):
        name = members[n - 1].name
        if start < pos:
            raise MediaRefused(label, "its local record overlaps another member's (a duplicate local header)", n, name)
        if start > pos:
            raise MediaRefused(label, _stray(buf, pos, start))
        pos = end
    if pos != d.cd_offset and len(d):
        raise MediaRefused(label, _stray(buf, pos, d.cd_offset))


def _stray(buf, a: int, b: int) -> str:
    """A description of bytes a..b that belong to no member."""
    lf = _local_header(buf, a)
    if lf is not None:
        name = bytes(buf[a + _LOCAL.size:a + _LOCAL.size + lf[9]]).decode("utf-8", "replace")
        return (f"a local header for {name!r} at offset {a} that the central directory does not list "
                "(a duplicate or hidden member)")
    return f"{b - a} bytes at offset {a} belong to no member"


def write_archive(arc: Archive, outs: list[tuple[object, Callable[[str], str | None] | None]]) -> list[int]:
    """Write the normalised archive once per (writer, rename) in outs, reading each member's stored bytes once;
    rename(name) gives the member's name in that output, None to leave it out (no rename: names as they are).
    Return the number of members written to each output."""
    states = [[out, rename, 0, []] for out, rename in outs]  # writer, rename, bytes written, central entries
    unmap = Unmapper(arc.buf)
    view = memoryview(arc.buf) if len(arc.buf) else memoryview(b"")
    for m in arc.members:
        for st in states:
            new = m.name if st[1] is None else st[1](m.name)
            if new is None:
                continue
            head, entry = _headers(m, new, st[2])
            st[0].write(head)
            st[2] += len(head)
            for a in range(m.data_at, m.data_at + m.csize, _COPY_CHUNK):
                piece = view[a:min(a + _COPY_CHUNK, m.data_at + m.csize)]
                st[0].write(piece)
                st[2] += len(piece)
            st[3].append(entry)
        unmap.passed(m.data_at + m.csize)
    counts = []
    for out, _, written, entries in states:
        central = b"".join(entries)
        out.write(central + end_records(len(entries), written, len(central), b""))
        counts.append(len(entries))
    return counts


def _headers(m: Stored, name: str, offset: int) -> tuple[bytes, bytes]:
    """(local header with name, central directory entry) of a normalised member at offset."""
    name_b = name.encode("utf-8")
    flags = (m.flags & _KEPT_FLAGS) | (0 if name.isascii() else 0x0800)
    big = m.usize >= _MAX32 or m.csize >= _MAX32
    local_extra = struct.pack("<HHQQ", 1, 16, m.usize, m.csize) if big else b""
    z64 = [v for v, need in ((m.usize, big), (m.csize, big), (offset, offset >= _MAX32)) if need]
    central_extra = struct.pack(f"<HH{len(z64)}Q", 1, 8 * len(z64), *z64) if z64 else b""
    needed = 45 if z64 else 20
    sizes = (_MAX32, _MAX32) if big else (m.csize, m.usize)
    local = _LOCAL.pack(_LOCAL_SIG, needed, flags, m.method, m.time, m.date, m.crc, *sizes,
                        len(name_b), len(local_extra)) + name_b + local_extra
    central = _CENTRAL.pack(b"PK\x01\x02", (3 << 8) | needed, needed, flags, m.method, m.time, m.date, m.crc,
                            *sizes, len(name_b), len(central_extra), 0, 0, 0, _EXTERNAL,
                            _MAX32 if offset >= _MAX32 else offset) + name_b + central_extra
    return local, central


def metadata_traces(path_or_buf, ids: Iterable[str], screen_names: Iterable[str] = (),
                    pseudonyms: Iterable[str] = (), label: str = "") -> list[str]:
    """Every trace of the accounts in the archive's metadata: member names (local and central), extra fields
    (local and central), member comments, the archive comment and any byte that belongs to no member record.

    A raw id counts as a whole run of digits, a screen name as a whole handle (any case), an earlier
    pseudonym anywhere. A name is read by the member name rule: its account part must be none of them (a
    tweet id that happens to equal a user id is a tweet id). Numeric fields (sizes, CRCs, offsets, times,
    ZIP64 fields, data descriptors) are numbers, not text: an import writes them from the data itself.
    """
    buf = map_file(path_or_buf) if isinstance(path_or_buf, (str, Path)) else path_or_buf
    ids = {x for x in ids if x}
    names = {x.lower() for x in screen_names if x}
    pseudos = {x for x in pseudonyms if x}
    where = f"{label}: " if label else ""
    try:
        d = read_directory(buf)
    except BadZip as e:
        return [f"{where}unreadable zip: {e}"]
    if _plain_and_clean(buf, d, ids, names, pseudos):
        return []
    return _traces_member_by_member(buf, d, ids, names, pseudos, where)


def _plain_and_clean(buf, d: Directory, ids: set[str], names: set[str], pseudos: set[str]) -> bool:
    """True when the archive is plain and holds no trace, shown with arrays instead of member by member
    (what an import or a correction writes: the normalised form). Plain: no member has an extra field or
    a comment, each local header is where the directory says, without extra fields or data descriptor,
    naming its member as the directory does, and the local records tile the bytes before the directory
    from offset 0. Then the only metadata text is the archive comment, and a member's names are its
    directory name twice. False (the caller then reads member by member, and says where) when the
    archive is not plain or something is found."""
    import numpy as np

    n = len(d)
    if not n or d.zip64.any() or (d.end - d.pos != _CENTRAL.size + d.nlen).any():
        return False
    arr = np.frombuffer(buf, np.uint8)
    off = d.offset
    if (off + _LOCAL.size > d.cd_offset).any():
        return False
    local = arr[off[:, None] + np.arange(_LOCAL.size)].view(_LOCAL_FIELDS).ravel()
    if ((local["sig"] != _LOCAL_SIG).any() or (local["flags"] & _DESCRIPTOR).any() or local["xlen"].any()
            or (local["nlen"] != d.nlen).any()):
        return False
    order = np.argsort(off, kind="stable")
    starts, ends = off[order], (off + _LOCAL.size + d.nlen + d.csize)[order]
    if starts[0] != 0 or (ends[:-1] != starts[1:]).any() or ends[-1] != d.cd_offset:
        return False
    # Every local name the directory's, byte for byte: both gathered as one array each.
    total = int(d.nlen.sum())
    within = np.arange(total) - np.repeat(np.cumsum(d.nlen) - d.nlen, d.nlen)
    central_names = np.frombuffer(d.cd, np.uint8)[np.repeat(d.pos + _CENTRAL.size, d.nlen) + within]
    if not np.array_equal(arr[np.repeat(off + _LOCAL.size, d.nlen) + within], central_names):
        return False
    if _text_traces(d.comment, ids, names, pseudos):
        return False
    # The names, one decode for all when every byte is ASCII and none is a line end (else one by one).
    if (central_names < 0x80).all() and (central_names != 0x0A).all():
        lines = np.full(total + n, 0x0A, np.uint8)
        lines[np.arange(total) + np.repeat(np.arange(n), d.nlen)] = central_names
        joined = lines.tobytes().decode("ascii")
        member_names = joined.split("\n")[:n]
    else:
        member_names = [d.name(i) for i in range(n)]
        joined = "\n".join(member_names)
    accounts = {account for account, _ in map(split_member, member_names)}
    # A pseudonym anywhere in a name counts (so also as its account); ids and screen names as the account.
    return (accounts.isdisjoint(ids) and (not names or {a.lower() for a in accounts}.isdisjoint(names))
            and not any(p in joined for p in pseudos))


def _traces_member_by_member(buf, d: Directory, ids: set[str], names: set[str], pseudos: set[str],
                             where: str) -> list[str]:
    """metadata_traces, every member's metadata read on its own: any archive, and says where a trace is."""
    problems: list[str] = []
    texts: list[tuple[str, bytes]] = [("the archive comment", d.comment)]
    member_names: list[tuple[str, str]] = []
    records = []
    for i in range(len(d)):
        name = _name(d, i)
        what = f"member {name!r}"
        member_names.append((what, name))
        raw = d.raw(i)
        nlen, xlen = int(d.nlen[i]), struct.unpack_from("<H", raw, 30)[0]
        extra_at = _CENTRAL.size + nlen
        texts.append((f"{what}: central extra fields", _text_extras(raw[extra_at:extra_at + xlen])))
        texts.append((f"{what}: comment", raw[extra_at + xlen:]))
        at = int(d.offset[i])
        lf = _local_header(buf, at)
        if lf is None:
            problems.append(f"{where}{what}: no local header at offset {at}")
            continue
        lname = bytes(buf[at + _LOCAL.size:at + _LOCAL.size + lf[9]]).decode("utf-8", "replace")
        member_names.append((f"{what}: local header name", lname))
        x_at = at + _LOCAL.size + lf[9]
        texts.append((f"{what}: local extra fields", _text_extras(bytes(buf[x_at:x_at + lf[10]]))))
        end = x_at + lf[10] + int(d.csize[i])
        if lf[2] & _DESCRIPTOR:
            try:
                end = _descriptor_end(buf, end, d, i, "", i + 1, name)
            except MediaRefused:
                pass  # then the bytes after the data are scanned as stray bytes
        records.append((at, end))
    pos = 0
    for a, b in sorted(records) + [(d.cd_offset, d.cd_offset)]:
        if a > pos:
            texts.append((f"bytes at offset {pos} outside any member", bytes(buf[pos:a])))
        pos = max(pos, b)
    # All the texts are searched at once (joined by NULs, which no id, handle or pseudonym holds); only
    # when that finds something is each text searched, to say where.
    if _text_traces(b"\0".join(t for _, t in texts), ids, names, pseudos):
        for what, t in texts:
            problems.extend(f"{where}{what} holds {found}" for found in _text_traces(t, ids, names, pseudos))
    for what, name in member_names:
        account = split_member(name)[0]
        if account in ids or account.lower() in names or account in pseudos or any(p in name for p in pseudos):
            problems.append(f"{where}{what} holds a hashed or corrected account's identity")
    return problems


_DIGITS = re.compile(rb"[0-9]+")
_WORDS = re.compile(rb"[A-Za-z0-9_]+")


def _text_traces(t: bytes, ids: set[str], names: set[str], pseudos: set[str]) -> list[str]:
    """What metadata text `t` holds of the accounts: an id as a whole run of digits, a screen name (lowercased
    in `names`) as a whole handle in any case, an earlier pseudonym anywhere."""
    found = []
    if ids and not ids.isdisjoint(m.decode() for m in _DIGITS.findall(t)):
        found.append("a hashed or corrected account's id")
    if names and not names.isdisjoint(m.decode().lower() for m in _WORDS.findall(t)):
        found.append("a hashed or corrected account's screen name")
    if any(p.encode() in t for p in pseudos):
        found.append("an earlier pseudonym")
    return found


def _text_extras(extra: bytes) -> bytes:
    """An extra field block without its ZIP64 fields (numbers), the rest joined by NULs (ids, then data)."""
    out, i = [], 0
    while i + 4 <= len(extra):
        hid, size = struct.unpack_from("<HH", extra, i)
        if hid != 1:
            out.append(extra[i + 4:i + 4 + size])
        i += 4 + size
    if i < len(extra):
        out.append(extra[i:])  # a malformed tail is text too
    return b"\0".join(out)
