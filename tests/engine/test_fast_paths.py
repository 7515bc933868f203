"""The engine's fast paths against plain oracles: the needle search, record windows, mapped rewrites, zip surgery."""

from __future__ import annotations

import hashlib
import io
import itertools
import mmap
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.engine import correct, csvio, zips
from workers.engine.search import Needles, valid_utf8
from workers.engine.store import HashingWriter, Unmapper, map_file
from workers.engine.verify import Forbidden, verify_zip_rewrite


def oracle(hay: bytes, exact, caseless) -> list[int]:
    """Every start of every needle, overlapping ones included, by plain bytes.find."""
    out = set()
    for h, needles in ((hay, exact), (hay.lower(), [n.lower() for n in caseless])):
        for n in needles:
            i = h.find(n)
            while i >= 0:
                out.add(i)
                i = h.find(n, i + 1)
    return sorted(out)


ALPHABET = b'aAbB_1@"\n,'


@settings(max_examples=300, deadline=None)
@given(hay=st.binary(max_size=300).map(lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b)),
       exact=st.lists(st.binary(min_size=1, max_size=4).map(lambda b: bytes(ALPHABET[x % 6] for x in b)), max_size=3),
       caseless=st.lists(st.text("abAB_1", min_size=1, max_size=4).map(str.encode), max_size=3))
def test_needles_find_what_bytes_find_finds(hay, exact, caseless):
    assert Needles(exact, caseless).find(hay) == oracle(hay, exact, caseless)


def decodes(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# Bytes at the decoder's edges: every lead and boundary continuation, and whole characters around the limits.
EDGES = [bytes([x]) for x in (0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
                                0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF)]
EDGES += [c.encode() for c in ("\u0080", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\uffff", "\U00010000", "\U0010ffff")]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(EDGES) | st.binary(max_size=3), max_size=10).map(b"".join))
def test_utf8_validation_agrees_with_decoding(b):
    assert valid_utf8(b) == decodes(b)
    assert valid_utf8(memoryview(b"x" + b)[1:]) == decodes(b)


def test_utf8_validation_agrees_with_decoding_on_every_short_string():
    """Every 2-byte string, every 3-byte one of the edge bytes, and every 4-byte one of the bytes that
    decide 4-byte sequences (the few windows random strings rarely hit: surrogates, past U+10FFFF)."""
    singles = [e for e in EDGES if len(e) == 1]
    four = [bytes([x]) for x in (0x41, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC2, 0xE0, 0xED, 0xF0, 0xF4, 0xF5)]
    cases = itertools.chain((bytes([x, y]) for x in range(256) for y in range(256)),
                            map(b"".join, itertools.product(singles, repeat=3)),
                            map(b"".join, itertools.product(four, repeat=4)))
    for b in cases:
        assert valid_utf8(b) == decodes(b), b
    assert valid_utf8(b"") and not valid_utf8(b"\xc3") and valid_utf8(b"\xc3\xa9")


def test_needles_offsets_are_relative_to_the_view_and_case_only_folds_ascii(tmp_path):
    hay = b"xx 12345 @Some_One \xc3\x89 1234 123456 @SOME_ONE"
    n = Needles([b"12345"], [b"some_one"])
    want = oracle(hay, [b"12345"], [b"some_one"])
    assert n.find(hay) == want and len(want) == 4  # 12345, @Some_One, 123456, @SOME_ONE
    assert n.find(memoryview(hay)[5:]) == [x - 5 for x in want[1:]]
    (tmp_path / "f").write_bytes(hay)
    assert n.find(map_file(tmp_path / "f")) == want
    assert Needles([], []).find(hay) == [] and n.find(b"") == []
    assert Needles([], [b"\xc3\xa9"]).find(hay) == []  # É is not é: the handle rule is ASCII


RECORDS = [csvio.encode_record([str(i), "x" * (i % 50), 'say "hi"\n"there"\n' * (i % 4), ""]) for i in range(200)]


@pytest.mark.parametrize("size", [1, 7, 100, 4096, 10**6])
def test_record_windows_cut_only_between_records(size, tmp_path):
    data = b"".join(RECORDS)
    (tmp_path / "f").write_bytes(data)
    for buf in (data, map_file(tmp_path / "f")):
        spans = list(csvio.record_windows(buf, 0, size))
        assert spans[0][0] == 0 and spans[-1][1] == len(data)
        assert all(b == a2 for (_, b), (a2, _) in zip(spans, spans[1:]))
        assert [r for a, b in spans for r in csvio.split_records(data[a:b])] == RECORDS


def test_record_windows_refuse_an_unterminated_quote():
    with pytest.raises(csvio.CsvProblem, match="unterminated"):
        list(csvio.record_windows(RECORDS[0] + b'"1","open\n', 0, 8))


def _target():
    return correct.Target("1000", "remove", frozenset({"1000"}), frozenset({"target_x"}), (), "P")


def test_rewrite_from_a_map_equals_rewrite_from_bytes(tmp_path):
    head = csvio.encode_record(["userid", "user_screen_name", "tweet_text", "tweetid"])
    body = [csvio.encode_record([str(10000 + i), f"n{i}", "hi @Target_X" if i % 7 == 0 else "plain", f"t{i}"]) for i in range(5000)]  # decoys: 10000, 11000 …
    body.insert(2500, csvio.encode_record(["1000", "target_x", "mine", "x"]))
    data = head + b"".join(body)
    (tmp_path / "f").write_bytes(data)
    outs = []
    for k, src in enumerate((data, map_file(tmp_path / "f"))):
        with HashingWriter(tmp_path / f"out{k}") as w:
            ch = correct.rewrite_csv(src, w, correct.Corrector([_target()]))
            sha = w.close()
        out = (tmp_path / f"out{k}").read_bytes()
        assert sha == hashlib.sha256(out).hexdigest()
        outs.append((out, ch.rows_removed, ch.rows_rewritten))
    assert outs[0] == outs[1]
    out, removed, rewritten = outs[0]
    assert removed == 1 and rewritten == len(range(0, 5000, 7))
    assert b'"1000"' not in out and b"@Target_X" not in out and out.startswith(head)
    assert out.count(b'"1000') == 10  # the decoys 10000 … 10009 stay


def make_zip(path, members, compression=zipfile.ZIP_STORED, stream=False):
    """A zip of members {name: bytes}; stream=True writes data descriptors (as to a pipe)."""
    if stream:
        raw = io.BytesIO()

        class Pipe(io.RawIOBase):
            def writable(self):
                return True

            def write(self, b):
                return raw.write(b)

        with zipfile.ZipFile(Pipe(), "w", compression) as z:
            for name, data in members.items():
                with z.open(name, "w") as f:
                    f.write(data)
        path.write_bytes(raw.getvalue())
    else:
        with zipfile.ZipFile(path, "w", compression) as z:
            for name, data in members.items():
                z.writestr(name, data)
    return path


MEMBERS = {f"{u}/images/{t}-1.jpg": bytes([t % 256]) * (50 + t * 37) for t, u in
           enumerate(["11", "1000", "12", "1000", "13", "14", "1000", "15"])}
MEMBERS["16/images/99-1.png"] = bytes(range(256)) * 400  # a large member: compared without copies


# The accounts rename() changes: a correction's check only accepts changes to members of its accounts.
FB = Forbidden(frozenset({"1000", "13", "16"}), frozenset(), frozenset(), frozenset({"1000"}))


def rename(name):
    account, rest = name.split("/", 1)
    if account == "1000":
        return None
    return f"PSEUDO{account}/{rest}" if account in ("13", "16") else name


@pytest.mark.parametrize("compression,stream", [(zipfile.ZIP_STORED, False), (zipfile.ZIP_DEFLATED, False),
                                                (zipfile.ZIP_DEFLATED, True)])
def test_zip_surgery_keeps_members_byte_for_byte(tmp_path, compression, stream):
    src = make_zip(tmp_path / "in.zip", MEMBERS, compression, stream)
    with HashingWriter(tmp_path / "out.zip") as w:
        ch = correct.write_zip(src, w, rename)
        w.close()
    want = {rename(n): d for n, d in MEMBERS.items() if rename(n)}
    with zipfile.ZipFile(tmp_path / "out.zip") as z:
        assert z.testzip() is None
        assert [i.filename for i in z.infolist()] == list(want)
        assert {n: z.read(n) for n in z.namelist()} == want
    assert ch.rows_removed == 3 and ch.rows_rewritten == 2
    assert verify_zip_rewrite(src, tmp_path / "out.zip", ch.edits, FB, "z") == []


def _rewritten(tmp_path, members=MEMBERS):
    src = make_zip(tmp_path / "in.zip", members)
    with HashingWriter(tmp_path / "out.zip") as w:
        ch = correct.write_zip(src, w, rename)
        w.close()
    return src, tmp_path / "out.zip", ch




def test_zip_check_finds_changed_bytes(tmp_path):
    src, out, ch = _rewritten(tmp_path)
    data = bytearray(out.read_bytes())
    with zipfile.ZipFile(out) as z:
        info = z.getinfo("15/images/7-1.jpg")
    at = info.header_offset + 30 + len(info.filename) + 3
    data[at] ^= 0xFF
    out.write_bytes(bytes(data))
    assert any("differ from the parent" in p for p in verify_zip_rewrite(src, out, ch.edits, FB, "z"))


def test_zip_check_finds_an_old_name_left_in_a_local_header(tmp_path):
    src, out, ch = _rewritten(tmp_path)
    data = out.read_bytes()
    with zipfile.ZipFile(out) as z:
        info = z.getinfo("PSEUDO13/images/4-1.jpg")
    start = info.header_offset + 30
    data = data[:start] + b"XXXXXX13" + data[start + 8:]
    out.write_bytes(data)
    assert any("local header" in p for p in verify_zip_rewrite(src, out, ch.edits, FB, "z"))


def test_zip_check_finds_an_undeclared_removal_and_a_trace(tmp_path):
    src, out, ch = _rewritten(tmp_path)
    assert verify_zip_rewrite(src, out, ch.edits[1:], FB, "z") == [
        "z: members differ from the parent's with the declared renames"]
    with HashingWriter(tmp_path / "bad.zip") as w:
        ch2 = correct.write_zip(src, w, lambda n: None if n.startswith("1000/") else n)
        w.close()
    problems = verify_zip_rewrite(src, tmp_path / "bad.zip", ch2.edits, FB, "z")
    assert any("13/images/4-1.jpg holds a corrected account's id" in p for p in problems)



def test_zip64_archives_are_read_and_rewritten(tmp_path):
    # More members than a plain end record can count: zipfile writes the ZIP64 end records.
    members = {f"{u}/images/{t}-1.jpg": bytes([t % 251]) for t, u in enumerate([11, 1000, 12, 14] * 22_000)}
    src = make_zip(tmp_path / "big.zip", members)
    with HashingWriter(tmp_path / "out.zip") as w:
        ch = correct.write_zip(src, w, rename)
        w.close()
    assert ch.rows_removed == 22_000
    with zipfile.ZipFile(tmp_path / "out.zip") as z:
        assert len(z.infolist()) == 66_000 and z.testzip() is None
        assert z.read("12/images/87998-1.jpg") == bytes([87998 % 251])
    data = (tmp_path / "out.zip").read_bytes()
    assert b"PK\x06\x06" in data[-200:]  # 66,000 members need the ZIP64 end records
    assert verify_zip_rewrite(src, tmp_path / "out.zip", ch.edits, FB, "z") == []


def test_offsets_past_4_gib_go_into_a_zip64_extra_field(tmp_path):
    src = make_zip(tmp_path / "in.zip", {"11/images/1-1.jpg": b"abc"})
    m = zips.read_directory(map_file(src)).member(0)
    entry = zips.central_entry(m, "PSEUDO11/images/1-1.jpg", 5_000_000_000)
    fake = entry + zips.end_records(1, 0, len(entry), b"note")
    d = zips.read_directory(fake)
    back = d.member(0)
    assert (back.name, back.offset, back.crc, back.file_size) == ("PSEUDO11/images/1-1.jpg", 5_000_000_000, m.crc, 3)
    assert bool(d.zip64[0]) and d.cd_offset == 0 and d.comment == b"note"
    with zipfile.ZipFile(io.BytesIO(fake)) as z:  # zipfile agrees
        assert z.infolist()[0].header_offset == 5_000_000_000
    big = zips.end_records(70_000, 6_000_000_000, 10, b"")
    assert big.startswith(b"PK\x06\x06") and big[-22:-18] == b"PK\x05\x06"


def test_archive_comment_is_dropped_and_utf8_names_survive(tmp_path):
    src = tmp_path / "c.zip"
    with zipfile.ZipFile(src, "w") as z:
        z.comment = b"published by the platform"
        z.writestr("13/images/1-1.jpg", b"x" * 10)
        z.writestr("14/images/\u00e9t\u00e9-1.jpg", b"y" * 10)
    with HashingWriter(tmp_path / "o.zip") as w:
        correct.write_zip(src, w, lambda n: n.replace("14/", "\u00e914/"))
        w.close()
    with zipfile.ZipFile(tmp_path / "o.zip") as z:
        assert z.comment == b"" and z.testzip() is None  # a rewrite publishes no archive comment
        assert z.namelist() == ["13/images/1-1.jpg", "\u00e914/images/\u00e9t\u00e9-1.jpg"]


def test_not_a_zip_is_refused():
    with pytest.raises(zips.BadZip):
        zips.read_directory(b"PK\x03\x04 this is not an archive")


def test_zip_check_finds_changed_bytes_in_a_renamed_member(tmp_path):
    src, out, ch = _rewritten(tmp_path)
    data = bytearray(out.read_bytes())
    with zipfile.ZipFile(out) as z:
        info = z.getinfo("PSEUDO16/images/99-1.png")
    data[info.header_offset + 30 + len(info.filename) + 500] ^= 0x01
    out.write_bytes(bytes(data))
    assert any("PSEUDO16/images/99-1.png: stored bytes differ" in p
               for p in verify_zip_rewrite(src, out, ch.edits, FB, "z"))


def test_directory_is_walked_when_a_name_holds_an_entry_signature(tmp_path):
    members = dict(MEMBERS)
    members["13/images/PK\x01\x02-1.jpg"] = b"sig"  # breaks the one-pass signature chain
    src = make_zip(tmp_path / "in.zip", members)
    d = zips.read_directory(map_file(src))
    with zipfile.ZipFile(src) as z:
        infos = z.infolist()
    assert [d.name(i) for i in range(len(d))] == [i.filename for i in infos]
    assert d.offset.tolist() == [i.header_offset for i in infos] and d.crc.tolist() == [i.CRC for i in infos]
    with HashingWriter(tmp_path / "out.zip") as w:
        ch = correct.write_zip(src, w, rename)
        w.close()
    with zipfile.ZipFile(tmp_path / "out.zip") as z:
        assert z.testzip() is None and z.read("PSEUDO13/images/PK\x01\x02-1.jpg") == b"sig"
    assert verify_zip_rewrite(src, tmp_path / "out.zip", ch.edits, FB, "z") == []


def test_a_hint_asks_rename_only_about_members_holding_it(tmp_path):
    src = make_zip(tmp_path / "in.zip", MEMBERS)
    asked = []

    def spy(name):
        asked.append(name)
        return rename(name)

    outs = []
    for hint in (None, [b"1000", b"13", b"16"]):
        asked.clear()
        with HashingWriter(tmp_path / "out.zip") as w:
            ch = correct.write_zip(src, w, spy, hint)
            w.close()
        outs.append(((tmp_path / "out.zip").read_bytes(), ch.edits, len(asked)))
    assert outs[0][:2] == outs[1][:2]
    assert outs[0][2] == len(MEMBERS) and outs[1][2] == 5  # 3 of 1000, one each of 13 and 16


def test_zip_check_finds_a_changed_directory_entry_and_a_change_to_another_account(tmp_path):
    src, out, ch = _rewritten(tmp_path)
    data = bytearray(out.read_bytes())
    entry = data.index(b"15/images/7-1.jpg", data.index(b"PK\x01\x02")) - 46  # its central directory entry
    assert data[entry:entry + 4] == b"PK\x01\x02"
    data[entry + 12] ^= 0x01  # the entry's modification time: the member's data is untouched
    out.write_bytes(bytes(data))
    assert verify_zip_rewrite(src, out, ch.edits, FB, "z") == [
        "z: members differ from the parent's with the declared renames"]
    src, out, ch = _rewritten(tmp_path)  # a clean rewrite again
    narrow = Forbidden(frozenset({"1000"}), frozenset(), frozenset(), frozenset({"1000"}))  # 13 and 16 not named
    assert verify_zip_rewrite(src, out, ch.edits, narrow, "z") == [
        "z: members differ from the parent's with the declared renames"]


def test_unmapper_drops_pages_well_behind_the_pass():
    calls = []

    class FakeMap:
        def madvise(self, option, start, length):
            calls.append((option, start, length))

    u = Unmapper(FakeMap())
    u.passed(Unmapper.LAG)  # nothing is far enough behind yet
    u.passed(2 * Unmapper.LAG + 5)
    u.passed(2 * Unmapper.LAG + 4096)  # less than LAG more: waits
    u.passed(4 * Unmapper.LAG)
    assert calls == [(mmap.MADV_DONTNEED, 0, Unmapper.LAG), (mmap.MADV_DONTNEED, Unmapper.LAG, 2 * Unmapper.LAG)]
    assert all(start % mmap.PAGESIZE == 0 for _, start, _ in calls)
    Unmapper(b"plain bytes").passed(10 * Unmapper.LAG)  # nothing to unmap: no error


def test_a_rewrite_keeps_few_mapped_pages_resident(tmp_path):
    head = csvio.encode_record(["userid", "user_screen_name", "tweet_text", "tweetid"])
    row = csvio.encode_record(["5", "someone", "x" * 900, "t"])
    path = tmp_path / "big.csv"
    with open(path, "wb") as f:
        f.write(head)
        for _ in range(4):
            f.write(row * (16 * 1024))  # 4 x ~15 MB
    src = map_file(path)
    correct.rewrite_csv(src, None, correct.Corrector([_target()]))
    # mincore is not in the standard library; residency of the map is read from /proc/self/smaps.
    rss_kb = _mapped_rss_kb(str(path))
    assert rss_kb is not None and rss_kb * 1024 <= 2 * Unmapper.LAG + 2 * correct.REWRITE_CHUNK


def _mapped_rss_kb(path: str) -> int | None:
    try:
        lines = open("/proc/self/smaps").read().splitlines()
    except OSError:
        pytest.skip("no /proc/self/smaps")
    for i, line in enumerate(lines):
        if line.endswith(path):
            for follow in lines[i + 1:i + 30]:
                if follow.startswith("Rss:"):
                    return int(follow.split()[1])
    return None


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 10**9)), max_size=12))
def test_rewrite_order_takes_every_file_once_archives_beside_large_files(files):
    """Every file is rewritten once; archives take turns with the other files, each kind largest first."""
    from workers.engine.api import _gil_aware_order

    entries = [{"kind": "media" if m else "tweets", "bytes": n} for m, n in files]
    order = _gil_aware_order(entries)
    assert sorted(order) == list(range(len(entries)))
    for media in (True, False):
        sizes = [entries[i]["bytes"] for i in order if (entries[i]["kind"] == "media") == media]
        assert sizes == sorted(sizes, reverse=True)
    paired = 2 * min(sum(m for m, _ in files), sum(not m for m, _ in files))
    assert [entries[i]["kind"] == "media" for i in order[:paired]] == [k % 2 == 0 for k in range(paired)]
