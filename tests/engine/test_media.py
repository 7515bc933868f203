"""Media archives: metadata that names accounts is normalised away or refused at import, and found after a correction."""

from __future__ import annotations

import io
import re
import shutil
import struct
import warnings
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.engine import correct, media
from workers.engine.errors import ImportFailed
from workers.engine.hashing import pseudonym
from workers.engine.store import HashingWriter
from workers.engine.verify import Forbidden, verify_zip_rewrite

from .conftest import KEY, make_alpha

ZIP = "ds_tweet_media_unhashed_1.zip"
# Hashed accounts of make_alpha (fewer than 5,000 followers) and a big one (published in clear).
HASHED = {"1000": "Target_X", "10000": "Target_Xy", "21000": "Target_", "555": "quiet_one"}
STAMP = (2017, 8, 6, 8, 15, 0)


def info(name: str, comment: bytes = b"", extra: bytes = b"") -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, date_time=STAMP)
    zi.comment, zi.extra = comment, extra
    return zi


def unicode_path(name: str) -> bytes:
    """An Info-ZIP Unicode path extra field (0x7075): version, CRC of the header name, the UTF-8 name."""
    data = b"\x01" + struct.pack("<L", zipfile.crc32(name.encode())) + name.encode()
    return struct.pack("<HH", 0x7075, len(data)) + data


def unicode_comment(text: str) -> bytes:
    data = b"\x01" + struct.pack("<L", 0) + text.encode()
    return struct.pack("<HH", 0x6375, len(data)) + data


def leaky_zip(path: Path) -> Path:
    """The alpha media archive with every kind of metadata naming accounts."""
    with zipfile.ZipFile(path, "w") as z:
        z.comment = b"taken down: 1000 @Target_X and quiet_one (555)"
        z.writestr(info("1000/images/1-1.jpg", b"by Target_X, id 1000", unicode_path("1000/images/1-1.jpg")),
                   b"target image")
        z.writestr(info("10000/images/2-1.jpg", b"", unicode_comment("reply to @target_x")), b"decoy image")
        z.writestr(info("777/images/4-1.png", b"retweets 555 / Quiet_One"), b"big image")
    return path


def src_with(tmp_path: Path, build) -> Path:
    src = make_alpha(tmp_path / "src", "ds")
    build(src / ZIP)
    return src


def published(engine, variant: str) -> bytes:
    m = engine.manifest("ds")
    f = next(f for f in m["files"] if f["kind"] == "media" and f["variant"] == variant)
    return engine.file_path("ds", m["version"], variant, f["path"]).read_bytes()


def outside_data(data: bytes) -> bytes:
    """Every byte of the archive but the members' stored data (which the tests choose free of ids)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        spans = []
        for i in z.infolist():
            nlen, xlen = struct.unpack_from("<HH", data, i.header_offset + 26)
            start = i.header_offset + 30 + nlen + xlen
            spans.append((start, start + i.compress_size))
    out, pos = [], 0
    for a, b in sorted(spans):
        out.append(data[pos:a])
        pos = b
    return b"\0".join(out + [data[pos:]])


def assert_no_account_in(meta: bytes, accounts: dict[str, str]):
    for uid, sn in accounts.items():
        assert not re.search(rb"(?<![0-9])" + uid.encode() + rb"(?![0-9])", meta), uid
        assert sn.lower().encode() not in meta.lower(), sn


def test_leaky_metadata_is_normalised_with_no_trace_in_the_hashed_variant(engine, tmp_path):
    src = src_with(tmp_path, leaky_zip)
    assert engine.import_dataset(src, "ds").version == 1
    hashed, unhashed = published(engine, "hashed"), published(engine, "unhashed")
    # Every byte but the stored images: no raw id or screen name of a hashed account, in any case.
    assert_no_account_in(outside_data(hashed), HASHED)
    # Both variants are normalised: no comment, no extra field, no archive comment; the same images.
    for data in (hashed, unhashed):
        assert b"Target" not in data and b"quiet" not in data.lower() and b"taken down" not in data
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            assert z.comment == b"" and z.testzip() is None
            assert all(i.comment == b"" and i.extra == b"" for i in z.infolist())
            assert sorted(z.read(n) for n in z.namelist()) == [b"big image", b"decoy image", b"target image"]
    with zipfile.ZipFile(io.BytesIO(hashed)) as z:
        assert z.namelist() == [pseudonym(KEY, "1000", 0) + "/images/1-1.jpg",
                                pseudonym(KEY, "10000", 0) + "/images/2-1.jpg", "777/images/4-1.png"]
    with zipfile.ZipFile(io.BytesIO(unhashed)) as z:
        assert z.namelist() == ["1000/images/1-1.jpg", "10000/images/2-1.jpg", "777/images/4-1.png"]
    assert engine.verify("ds").ok


def test_data_descriptors_and_unlisted_extras_are_normalised(engine, tmp_path):
    def build(path):
        # Written to a stream that cannot seek: zipfile puts a data descriptor after each member.
        class Unseekable(io.RawIOBase):
            def __init__(self):
                self.buf = bytearray()

            def writable(self):
                return True

            def write(self, b):
                self.buf += b
                return len(b)

        sink = Unseekable()
        with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in (("1000/images/1-1.jpg", b"target image" * 50), ("555/images/3-1.png", b"quiet")):
                with z.open(info(name, extra=struct.pack("<HH", 0x5455, 5) + b"\x01" + b"1000"), "w") as w:
                    w.write(data)
        assert zipfile.ZipFile(io.BytesIO(bytes(sink.buf))).infolist()[0].flag_bits & 0x08
        path.write_bytes(bytes(sink.buf))

    engine.import_dataset(src_with(tmp_path, build), "ds")
    hashed = published(engine, "hashed")
    assert_no_account_in(outside_data(hashed), HASHED)
    with zipfile.ZipFile(io.BytesIO(hashed)) as z:
        assert z.testzip() is None and all(i.flag_bits & 0x08 == 0 and i.extra == b"" for i in z.infolist())
        assert z.read(pseudonym(KEY, "1000", 0) + "/images/1-1.jpg") == b"target image" * 50


def _write(path: Path, names: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name, which is the point
        with zipfile.ZipFile(path, "w") as z:
            for n in names:
                z.writestr(info(n), b"img")


def _patch(path: Path, old: bytes, new: bytes, occurrence: int) -> None:
    """Replace the occurrence-th (0: the local header's, 1: the central directory's) copy of old."""
    data = path.read_bytes()
    at = -1
    for _ in range(occurrence + 1):
        at = data.index(old, at + 1)
    path.write_bytes(data[:at] + new + data[at + len(old):])


def _hidden_record(path: Path) -> None:
    """Two members, the second one's central entry removed: its local record is published by nobody's leave."""
    _write(path, ["1000/images/1-1.jpg", "1000/images/1-2.jpg"])
    data = path.read_bytes()
    with zipfile.ZipFile(path) as z:
        second = z.infolist()[1]
    cd_at = data.index(b"PK\x01\x02")
    cd2_at = data.index(b"PK\x01\x02", cd_at + 4)
    eocd = data.index(b"PK\x05\x06")
    kept_cd = data[cd_at:cd2_at]
    tail = bytearray(data[eocd:])
    struct.pack_into("<HHLL", tail, 8, 1, 1, len(kept_cd), cd_at)
    # The hidden record names the listed member (a duplicate in the local directory).
    local = bytearray(data[:cd_at])
    name_at = second.header_offset + 30
    local[name_at:name_at + 19] = b"1000/images/1-1.jpg"
    path.write_bytes(bytes(local) + kept_cd + bytes(tail))


def _stray_prefix(path: Path) -> None:
    """Bytes before the first member (zipfile still reads such an archive: it allows a prefix)."""
    _write(path, ["1000/images/1-1.jpg"])
    path.write_bytes(b"#!/bin/sh 1000\n" + path.read_bytes())
    with zipfile.ZipFile(path) as z:
        assert z.read("1000/images/1-1.jpg") == b"img"


def _stray_gap(path: Path) -> None:
    """Bytes between the last member and the central directory (which is moved to make room)."""
    _write(path, ["1000/images/1-1.jpg", "555/images/2-1.jpg"])
    data = path.read_bytes()
    cd = data.index(b"PK\x01\x02")
    data = data[:cd] + b"by @Target_X" + data[cd:]
    eocd = data.rindex(b"PK\x05\x06")
    path.write_bytes(data[:eocd + 16] + struct.pack("<L", cd + 12) + data[eocd + 20:])
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None


def _encrypted(path: Path) -> None:
    _write(path, ["1000/images/1-1.jpg"])
    data = bytearray(path.read_bytes())
    data[data.index(b"PK\x01\x02") + 8] |= 0x01
    path.write_bytes(bytes(data))


REFUSED = {
    "dotdot": (lambda p: _write(p, ["1000/images/../images/1-1.jpg"]), "'..' in the name"),
    "dotdot_first": (lambda p: _write(p, ["../1000/images/1-1.jpg"]), "'..' in the name"),
    "backslash": (lambda p: _write(p, ["1000\\images\\1-1.jpg"]), "a backslash in the name"),
    "absolute": (lambda p: _write(p, ["/1000/images/1-1.jpg"]), "an absolute path"),
    "drive": (lambda p: _write(p, ["C:/1000/images/1-1.jpg"]), "an absolute path"),
    "directory": (lambda p: _write(p, ["1000/", "1000/images/1-1.jpg"]), "a directory entry"),
    "not_the_pattern": (lambda p: _write(p, ["1000/images/1-Target_X.jpg"]), "is not <userid>/images/<tweetid>-<n>.<ext>"),
    "other_folder": (lambda p: _write(p, ["1000/videos/1-1.mp4"]), "is not <userid>/images/<tweetid>-<n>.<ext>"),
    "duplicate_central": (lambda p: _write(p, ["1000/images/1-1.jpg", "555/images/3-1.jpg", "1000/images/1-1.jpg"]),
                          "given twice in the central directory (also member 1)"),
    "local_name_differs": (lambda p: (_write(p, ["1000/images/1-1.jpg"]),
                                      _patch(p, b"1000/images/1-1.jpg", b"1000/images/9-1.jpg", 0)),
                           "its local header names '1000/images/9-1.jpg'"),
    "hidden_local_record": (_hidden_record, "a local header for '1000/images/1-1.jpg' at offset"),
    "stray_prefix": (_stray_prefix, "not a readable zip archive"),
    "stray_gap": (_stray_gap, "12 bytes at offset"),
    "encrypted": (_encrypted, "the member is encrypted"),
    "not_a_zip": (lambda p: p.write_bytes(b"PK\x03\x04 truncated"), "not a readable zip archive"),
    "unknown_user": (lambda p: _write(p, ["999/images/1-1.jpg"]), "user 999 is not in the users file"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_archives_are_refused_naming_archive_member_and_problem(engine, tmp_path, case):
    build, problem = REFUSED[case]
    src = src_with(tmp_path, build)
    with pytest.raises(ImportFailed) as e:
        engine.import_dataset(src, "ds")
    msg = str(e.value)
    assert msg.startswith(ZIP + ": ") and problem in msg, msg
    if case not in ("hidden_local_record", "stray_prefix", "stray_gap", "not_a_zip"):
        assert re.search(r"member \d+ '", msg), msg  # the member, by number and name
    # Nothing published, nothing left over.
    assert engine.list_datasets() == []
    assert not any((engine.data_dir / "staging").iterdir())
    shutil.rmtree(src)
    assert engine.import_dataset(make_alpha(tmp_path / "src", "ds"), "ds").version == 1


def test_member_name_rule():
    assert media.member_problem("1000/images/1234-1.jpg") is None
    assert media.member_problem("1000/images/1234-12.mp4") is None
    for bad in ("1000/images/1234.jpg", "1000/images/1234-1", "x1000/images/1-1.jpg", "1000/images/1-1.jpg/",
                "1000//images/1-1.jpg", "1000/images/1-1.jpg ", " 1000/images/1-1.jpg", "1000/images/1-1.j_g",
                "1000/images/1-1.jpg\n"):
        assert media.member_problem(bad) is not None, bad
    assert media.member_account("1000/images/1-1.jpg") == "1000"


@settings(max_examples=40, deadline=None)
@given(comments=st.lists(st.binary(max_size=40), min_size=2, max_size=2),
       extras=st.lists(st.tuples(st.integers(2, 0xFFFF), st.binary(max_size=30)), max_size=3),
       archive_comment=st.binary(max_size=60))
def test_normalised_archives_keep_only_names_and_data(tmp_path_factory, comments, extras, archive_comment):
    # Whatever the comments and extra fields say (a secret marker here), none of it is written.
    secret = b"SECRET_9f3"
    path = tmp_path_factory.mktemp("z") / "m.zip"
    extra = b"".join(struct.pack("<HH", h, len(d) + len(secret)) + secret + d for h, d in extras)
    with zipfile.ZipFile(path, "w") as z:
        z.comment = secret + archive_comment
        z.writestr(info("1000/images/1-1.jpg", secret + comments[0], extra), b"one")
        z.writestr(info("555/images/2-1.jpg", secret + comments[1]), b"two")
    arc = media.read_archive(path)
    outs = [io.BytesIO(), io.BytesIO()]
    counts = media.write_archive(arc, [(outs[0], None), (outs[1], lambda n: None if n.startswith("555/") else "P" + n)])
    assert counts == [2, 1]
    for out, names in zip(outs, (["1000/images/1-1.jpg", "555/images/2-1.jpg"], ["P1000/images/1-1.jpg"])):
        data = out.getvalue()
        assert secret not in data
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            assert z.namelist() == names and z.testzip() is None and z.comment == b""
            assert z.read(names[0]) == b"one"


# --- after a correction -------------------------------------------------------------------------

FB = Forbidden(ids=frozenset({"1000", pseudonym(KEY, "1000", 0)}), pseudonyms=frozenset({pseudonym(KEY, "1000", 0)}),
               screen_names=frozenset({"target_x"}), removed_ids=frozenset())


def _rehash(src: Path, out: Path):
    new = pseudonym(KEY, "1000", 1)
    with HashingWriter(out) as w:
        ch = correct.write_zip(src, w, lambda n: new + n[4:] if n.startswith("1000/") else n, [b"1000"])
        w.close()
    return ch


def test_a_rename_drops_the_members_old_metadata_and_verification_passes(tmp_path):
    src = leaky_zip(tmp_path / "legacy.zip")
    # A legacy archive (published before imports normalised) whose only traces are on the renamed member.
    with zipfile.ZipFile(src, "w") as z:
        z.comment = b"nothing to see"
        z.writestr(info("1000/images/1-1.jpg", b"by Target_X, id 1000", unicode_path("1000/images/1-1.jpg")),
                   b"target image")
        z.writestr(info("777/images/4-1.png", b"plain"), b"big image")
    out = tmp_path / "out.zip"
    ch = _rehash(src, out)
    assert verify_zip_rewrite(src, out, ch.edits, FB, "z") == []
    with zipfile.ZipFile(out) as z:
        renamed = z.infolist()[0]
        assert renamed.comment == b"" and renamed.extra == b"" and z.comment == b"" and z.testzip() is None
        assert z.infolist()[1].comment == b"plain"  # another account's member is kept byte for byte


@pytest.mark.parametrize("plant", ["member_comment", "unicode_path_of_another", "archive_comment", "stray_bytes"])
def test_correction_verification_finds_a_planted_trace_in_metadata(tmp_path, plant):
    src = tmp_path / "legacy.zip"
    comment, extra, archive = b"plain", b"", b""
    if plant == "member_comment":
        comment = b"reply to @TARGET_X"
    elif plant == "unicode_path_of_another":
        extra = unicode_path("1000/images/4-1.png")
    elif plant == "archive_comment":
        archive = b"x"  # planted in the output below: a rewrite drops the parent's
    with zipfile.ZipFile(src, "w") as z:
        z.comment = archive
        z.writestr(info("1000/images/1-1.jpg"), b"target image")
        z.writestr(info("777/images/4-1.png", comment, extra), b"big image")
    out = tmp_path / "out.zip"
    ch = _rehash(src, out)
    data = out.read_bytes()
    if plant == "archive_comment":
        data = data[:-2] + struct.pack("<H", 4) + b"1000"
    elif plant == "stray_bytes":
        cd = data.index(b"PK\x01\x02")
        # Bytes before the directory that no member owns: every offset after them moves.
        data = data[:cd] + b" 1000 " + data[cd:]
        eocd = data.rindex(b"PK\x05\x06")
        data = data[:eocd + 16] + struct.pack("<L", cd + 6) + data[eocd + 20:]
    out.write_bytes(data)
    problems = verify_zip_rewrite(src, out, ch.edits, FB, "z")
    assert any(("holds a hashed or corrected account's" in p) for p in problems), problems


def test_metadata_scan_reads_ids_as_whole_numbers_and_names_as_whole_handles(tmp_path):
    path = tmp_path / "m.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.comment = b"ids 10001 and 21000, handles @Target_Xy and Target_"
        z.writestr(info("10000/images/1000-1.jpg", b"see 100 and 10001"), b"1000 in the data is not metadata")
    assert media.metadata_traces(path, ["1000"], ["Target_X"]) == []
    assert media.metadata_traces(path, ["21000"], [], label="m") == ["m: the archive comment holds a hashed or "
                                                                      "corrected account's id"]
    found = media.metadata_traces(path, ["10000"], ["target_"])
    assert any("the archive comment holds a hashed or corrected account's screen name" in p for p in found)
    assert any("member '10000/images/1000-1.jpg' holds" in p for p in found)
    assert any("local header name holds" in p for p in found)


def test_a_correction_of_an_imported_archive_leaves_no_trace_in_any_metadata_byte(world):
    world.apply("m1", [("1000", "rehash")])
    m = world.manifest("alpha")
    for f in m["files"]:
        if f["kind"] == "media":
            path = world.file_path("alpha", m["version"], f["variant"], f["path"])
            assert media.metadata_traces(path, ["1000"], ["Target_X"], [pseudonym(KEY, "1000", 0)]) == []
    assert world.verify("alpha").ok


def test_a_correction_over_a_legacy_archive_with_a_trace_publishes_nothing(world):
    # An archive published before imports normalised media (planted in place of the stored blob): another
    # account's member comment mentions the account. The rename is fine, the comment is found.
    from workers.engine.errors import VerificationFailed

    path = world.file_path("alpha", 1, "hashed", "alpha_tweet_media_hashed_1.zip")
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as z:
        members = [(i.filename, z.read(i)) for i in z.infolist()]
    path.chmod(0o644)
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members:
            z.writestr(info(name, b"RT @Target_X" if name.startswith("777/") else b""), data)
    with pytest.raises(VerificationFailed, match=r"member '777/images/4-1.png': comment holds .* screen name"):
        world.apply("legacy", [("1000", "rehash")])
    assert world.manifest("alpha")["version"] == 1 and world.manifest("gamma")["version"] == 1


def test_a_re_derived_master_may_name_members_by_an_allowed_pseudonym(tmp_path):
    p = pseudonym(KEY, "1000", 1)
    path = tmp_path / "m.zip"
    _write(path, [p + "/images/1-1.jpg", "555/images/2-1.jpg"])
    with pytest.raises(media.MediaRefused, match="name is not"):
        media.read_archive(path)
    assert media.read_archive(path, {p}).names == [p + "/images/1-1.jpg", "555/images/2-1.jpg"]
    assert media.member_account(p + "/images/1-1.jpg") == p
    assert media.member_problem(p + "/images/../1-1.jpg", {p}) is not None


def _base_archive() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.comment = b"hello"
        for n in ("1000/images/1-1.jpg", "555/images/2-1.jpg"):
            z.writestr(info(n, b"c", unicode_path(n)), b"data" * 10)
    return buf.getvalue()


BASE = _base_archive()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(BASE) - 1), st.integers(0, 255), st.sampled_from(["set", "cut", "add"])),
                min_size=1, max_size=4))
def test_a_damaged_archive_is_refused_clearly_or_read_whole(tmp_path_factory, edits):
    data = bytearray(BASE)
    for at, byte, op in edits:
        at = min(at, len(data) - 1)
        if op == "set":
            data[at] = byte
        elif op == "cut":
            del data[at:at + 1 + byte % 8]
        else:
            data[at:at] = bytes([byte]) * (1 + byte % 8)
    path = tmp_path_factory.mktemp("f") / "m.zip"
    path.write_bytes(bytes(data))
    try:
        arc = media.read_archive(path)
    except media.MediaRefused as e:
        assert str(e).startswith("m.zip: ")
        return
    out = io.BytesIO()
    media.write_archive(arc, [(out, None)])
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as z:  # whatever was accepted is written as a valid zip
        assert z.namelist() == arc.names and z.comment == b""
        assert all(i.extra == b"" and i.comment == b"" for i in z.infolist())


_ACCOUNTS = ["1000", "10000", "777", "Target_X", "x/y", "Zm9v+/bar=" * 4 + "abcd"]


@settings(max_examples=150, deadline=None)
@given(members=st.lists(st.tuples(st.sampled_from(_ACCOUNTS), st.sampled_from(["/images/1-1.jpg", "/a/1000.png", ""]),
                                  st.sampled_from([b"", b"see 1000", b"@target_x"]),
                                  st.sampled_from([b"", unicode_path("1000/images/1-1.jpg")])),
                        min_size=1, max_size=5, unique_by=lambda m: m[0] + m[1]),
       decorated=st.booleans(),
       archive_comment=st.sampled_from([b"", b"1000", b"hello @Target_X"]),
       ids=st.sets(st.sampled_from(["1000", "10000", "999"]), max_size=2),
       names=st.sets(st.sampled_from(["target_x", "Target_Xy", "nobody"]), max_size=2),
       pseudos=st.sets(st.sampled_from(["Zm9v+/bar=", "x/y", "qqq"]), max_size=2))
def test_metadata_scan_of_plain_archives_agrees_with_the_member_by_member_scan(
        tmp_path_factory, members, decorated, archive_comment, ids, names, pseudos):
    """The array path answers "no trace" only for a plain archive in which the member-by-member scan finds
    nothing; any other archive goes member by member. Undecorated archives (no member comment or extra
    field: what imports write) are plain."""
    from workers.engine.store import map_file
    from workers.engine.zips import read_directory

    path = tmp_path_factory.mktemp("plain") / "m.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.comment = archive_comment
        for account, rest, comment, extra in members:
            z.writestr(info(account + rest, *((comment, extra) if decorated else ())), b"data")
    buf = map_file(path)
    d = read_directory(buf)
    lowered = {n.lower() for n in names}
    by_member = media._traces_member_by_member(buf, d, ids, lowered, pseudos, "")
    if media._plain_and_clean(buf, d, ids, lowered, pseudos):
        assert by_member == []
    elif not decorated:
        assert by_member != []  # plain: only a trace sends it member by member
    assert media.metadata_traces(path, ids, names, pseudos) == by_member


def test_a_normalised_archive_is_read_as_arrays(tmp_path):
    from workers.engine.store import map_file
    from workers.engine.zips import read_directory

    path = tmp_path / "m.zip"
    with zipfile.ZipFile(path, "w") as z:
        for n in range(30):
            z.writestr(info(f"{777 + n}/images/{n}-1.jpg"), b"data")
    buf = map_file(path)
    d = read_directory(buf)
    assert media._plain_and_clean(buf, d, {"1000"}, {"target_x"}, {"Zm9v"})
    assert not media._plain_and_clean(buf, d, {"780"}, set(), set())  # a member's account: found
    assert media.metadata_traces(path, ["780"], []) == [
        "member '780/images/3-1.jpg' holds a hashed or corrected account's identity",
        "member '780/images/3-1.jpg': local header name holds a hashed or corrected account's identity"]


def test_bytes_outside_every_member_are_read_though_the_members_are_plain(tmp_path):
    path = tmp_path / "m.zip"
    _stray_gap(path)  # plain members: only the bytes before the directory name an account (@Target_X)
    assert media.metadata_traces(path, [], ["Target_X"], []) == [
        "bytes at offset 103 outside any member holds a hashed or corrected account's screen name"]
