"""Differential tests of the byte-level import (fastimport) against the reference path (every record
parsed with the csv module): same files byte for byte, same index, same manifest summary, same errors,
on tricky and random CSV, with and without standing decisions."""

from __future__ import annotations

import random
import re
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from workers.engine import csvio, fastimport, handles, importer, index
from workers.engine.api import Engine
from workers.engine.errors import ImportFailed
from workers.engine.hashing import pseudonym

from .conftest import TWEET_COLS, TWEET_COLS_2018, USER_COLS, tweet_row, user_row

KEY = b"fast-import-test-key"


def _write(path: Path, cols: list[str], rows: list[dict], terms: list[bytes], raw_lines: dict | None = None):
    """The archive's style, with each record's terminator from `terms` (LF, CRLF, or none for the last)
    and some records replaced by hand-written bytes (`raw_lines`: index -> bytes) to break the form."""
    with open(path, "wb") as f:
        f.write(csvio.encode_record(cols))
        for n, r in enumerate(rows):
            rec = csvio.encode_record([r[c] for c in cols], terms[n % len(terms)])
            if raw_lines and n in raw_lines:
                rec = raw_lines[n]
            if n == len(rows) - 1 or rec.endswith(b"\n"):
                f.write(rec)
            else:
                f.write(rec + b"\n")


def _import(src: Path, data: Path, fast: bool, decisions=None, chunk: int | None = None, monkeypatch=None):
    """(files by path, index rows, summary) of importing src as 'ds', or the ImportFailed message."""
    old = (fastimport.FAST, importer.IMPORT_CHUNK, fastimport.FastTweets.block, fastimport.PAIRS_HELD)
    fastimport.FAST = fast
    real = fastimport.FastTweets.block

    def counted(self, block):
        done = real(self, block)
        FAST_BLOCKS[0] += done is not None
        return done

    fastimport.FastTweets.block = counted
    if chunk:
        importer.IMPORT_CHUNK = chunk
        fastimport.PAIRS_HELD = 3  # small blocks: the index's pairs are also counted in before each file's end
    try:
        eng = Engine(data, KEY, "k")
        try:
            eng.import_dataset(src, "ds", decisions=decisions)
        except ImportFailed as e:
            return ("failed", str(e))
        m = eng.manifest("ds")
        files = {(e["variant"], e["path"]): eng.file_path("ds", 1, e["variant"], e["path"]).read_bytes()
                 for e in m["files"]}
        c = sqlite3.connect(str(data / "index.sqlite"))
        idx = {t: sorted(c.execute(f"select * from {t}").fetchall())
               for t in ("occ", "names", "handles", "both_packed", "followers")}
        # A packed pair row as its counts: the two paths may flush one row's entries in different pieces.
        idx["both_packed"] = [(*r[:3], sorted(index.unpack_pairs(r[3]).items())) for r in idx["both_packed"]]
        c.close()
        eng.index.close()
        return files, idx, m["summary"], m["accounts"], m["tweets"]
    finally:
        fastimport.FAST, importer.IMPORT_CHUNK, fastimport.FastTweets.block, fastimport.PAIRS_HELD = old


FAST_BLOCKS = [0]  # blocks the byte-level path imported (the comparison is void without some)


def _same(src: Path, decisions=None, chunk: int | None = None):
    FAST_BLOCKS[0] = 0
    with tempfile.TemporaryDirectory() as tmp:
        fast = _import(src, Path(tmp) / "fast", True, decisions, chunk)
        slow = _import(src, Path(tmp) / "slow", False, decisions, chunk)
    assert fast == slow
    return fast


ACCOUNTS = [
    {"userid": "1", "user_display_name": 'Quote "one", comma', "user_screen_name": "Below", "follower_count": "4999"},
    {"userid": "2", "user_display_name": "At threshold", "user_screen_name": "At", "follower_count": "5000"},
    {"userid": "3", "user_display_name": "Multi\nline", "user_screen_name": "x_3", "follower_count": "0"},
    {"userid": "44", "user_display_name": "Ünïcode ☃", "user_screen_name": "Dec", "follower_count": "12"},
    {"userid": "55", "user_display_name": "Big", "user_screen_name": "BIG", "follower_count": "90000"},
]
TEXTS = ["hello @below and @AT", 'she said "hi", @x_3\r\nok', "RT @Dec: @dec_ @DEC @bigx @BIG", "no mention",
         "a=b&c=d @Below=", "line\nbreak @at", '""quoted""', "@", "x@below", "@BelowAbove @below_"]
MENTIONS = ["[]", "", "[1, 2]", "['3', '44']", "[55, 1, 999]", "['1']", "[44]"]


def _master(tmp: Path, rng: random.Random, n: int, cols=TWEET_COLS, raw_lines=None, terms=(b"\n", b"\r\n")):
    src = tmp / "src"
    src.mkdir(parents=True, exist_ok=True)
    _write(src / "ds_users_csv_unhashed.csv", USER_COLS, [user_row(a) for a in ACCOUNTS], [b"\n"])
    rows = []
    for t in range(n):
        a = rng.choice(ACCOUNTS)
        # 18-digit ids, short ones, and 19- and 20-digit ones (keyed by importer._tid_key's hash)
        tid = 10**17 + t if t % 7 else 1000 + t if t % 3 else 10**18 + t if t % 2 else 10**19 + t
        rows.append(tweet_row(str(tid), a, rng.choice(TEXTS),
                              in_reply_to_userid=rng.choice(["", "1", "2", "44", "999"]),
                              retweet_userid=rng.choice(["", "3", "55", "1"]),
                              user_mentions=rng.choice(MENTIONS)))
    _write(src / "ds_tweets_csv_unhashed.csv", cols, rows, list(terms), raw_lines)
    return src


LEDGER = [{"user_id": "44", "remedy": "rehash", "epoch": 2, "screen_names": ["dec"]},
          {"user_id": "3", "remedy": "remove", "epoch": 1, "screen_names": ["x_3"]},
          {"user_id": "777777", "remedy": "rehash", "epoch": 1, "screen_names": ["elsewhere"]}]


@pytest.mark.parametrize("decisions", [None, LEDGER], ids=["empty-ledger", "ledger"])
@pytest.mark.parametrize("chunk", [None, 200], ids=["one-block", "small-blocks"])
def test_tricky_master_imports_identically(tmp_path, decisions, chunk):
    src = _master(tmp_path, random.Random(5), 120)
    files, _, summary, *_ = _same(src, decisions, chunk)
    assert FAST_BLOCKS[0] >= (1 if chunk is None else 20)
    hashed = files[("hashed", "ds_tweets_csv_hashed.csv")]
    assert pseudonym(KEY, "1", 0).encode() in hashed and b"hello @below" not in hashed.lower()  # 4,999: hashed
    assert b'"2"' in hashed  # 5,000: not hashed
    assert b"\r\n" in hashed and b"\n" in hashed
    if decisions:
        assert summary["rows_removed"] > 0 and summary["rows_rewritten"] > 0


def test_earlier_pseudonyms_in_text_follow_the_ledger(tmp_path):
    old = pseudonym(KEY, "44", 0)
    src = _master(tmp_path, random.Random(1), 30)
    rows = [tweet_row("77", ACCOUNTS[1], f"see {old} and @dec", user_mentions=f"['{old}']")]
    _write(src / "ds_tweets_csv_unhashed.csv", TWEET_COLS, rows, [b"\n"])
    files, _, summary, *_ = _same(src, LEDGER)
    assert old.encode() not in files[("hashed", "ds_tweets_csv_hashed.csv")]
    assert summary["rows_rewritten"] == 2  # the users row of 44 and the tweet


def test_blocks_out_of_the_canonical_form_fall_back(tmp_path):
    """Unquoted fields, a 2018 column order, records with a quote in an id: the same output."""
    rng = random.Random(3)
    raw = {5: b'1,1,a,Below,,,,4999,1,2015,en,en,unquoted @at text,t,c,,,,false,,,absent,absent,0,0,0,0,[],[],[1],\n',
           9: b'"2""x","1","a","Below","","","","4999","1","2015","en","en","t","t","c","","","","false","","","a","a",'
              b'"0","0","0","0","[]","[]","[]",""\n'}
    src = _master(tmp_path, rng, 60, raw_lines=raw)
    _same(src, None, 300)
    assert FAST_BLOCKS[0] > 0  # the blocks without the odd records
    _same(src, LEDGER, 300)
    src2 = _master(tmp_path / "b", rng, 60, cols=TWEET_COLS_2018)
    _same(src2, LEDGER, None)


@pytest.mark.parametrize("bad", [
    b'"5","777","x","y","","","","1","1","2015","en","en","t","t","c","","","","false","","","a","a","0","0","0","0","[]","[]","[]",""\n',
    b'"","1","x","y","","","","1","1","2015","en","en","t","t","c","","","","false","","","a","a","0","0","0","0","[]","[]","[]",""\n',
    b'"6","1","x"\n',
    b'"7","1","x\xff","y","","","","1","1","2015","en","en","t","t","c","","","","false","","","a","a","0","0","0","0","[]","[]","[]",""\n',
    b'"100000000000000001","1","x","y","","","","1","1","2015","en","en","t","t","c","","","","false","","","a","a","0","0","0","0","[]","[]","[]",""\n',
    b'"1000000000000000021","1","x","y","","","","1","1","2015","en","en","t","t","c","","","","false","","","a","a","0","0","0","0","[]","[]","[]",""\n',
], ids=["unknown-author", "empty-tweetid", "short-record", "bad-utf8", "duplicate-tweetid", "duplicate-19-digit-tweetid"])
def test_bad_records_give_the_same_error(tmp_path, bad):
    src = _master(tmp_path, random.Random(2), 40, raw_lines={20: bad}, terms=(b"\n",))
    res = _same(src, None, 500)
    assert res[0] == "failed"


TEXT_ST = st.lists(st.sampled_from(list("ab@_=\"',\r\n xé") + ["@below", "@AT", "@dec", "@x_3", "[1, 2]",
                                                                 "abcdefghijklmnopqrstuvwxyz_0123456789",
                                                                 pseudonym(KEY, "44", 1), pseudonym(KEY, "44", 0),
                                                                 "A" * 43 + "=", "+/" * 22]),
                   max_size=12).map("".join)


@pytest.mark.parametrize("chunk", [None, 150], ids=["one-block", "small-blocks"])
def test_an_equals_sign_that_is_no_pseudonym_hides_no_earlier_one(tmp_path, chunk):
    """The byte-level path sends a record to the ledger only for a 44-byte window up to an '=' that is an
    earlier pseudonym: '='s of other shapes (decoys of the same shape, '=' right after or before one)
    must not hide a real one anywhere in a text, at its very start or end too."""
    old0, old1 = pseudonym(KEY, "44", 0), pseudonym(KEY, "44", 1)
    decoy = "B" * 43 + "="
    texts = [f"{old0}", f"x={old1}", f"{old1}=", f"a=b c==d {decoy} {old0} e=", f'""{old1}""',
             f"{decoy}{old0}", f"=={old1[:-1]}", f"{old0[1:]} no", f"q {old1}{old0}", "a=b, no pseudonym =",
             f"@dec={old0}"]
    src = _master(tmp_path, random.Random(2), 10)
    rows = [tweet_row(str(900 + k), ACCOUNTS[1], t, user_mentions="[]", in_reply_to_userid="")
            for k, t in enumerate(texts)]
    _write(src / "ds_tweets_csv_unhashed.csv", TWEET_COLS, rows, [b"\n"])
    files, *_ = _same(src, LEDGER, chunk)
    assert FAST_BLOCKS[0] >= 1
    for variant in ("unhashed", "hashed"):
        out = files[(variant, f"ds_tweets_csv_{variant}.csv")]
        assert old0.encode() not in out and old1.encode() not in out
        assert decoy.encode() in out and old1[:-1].encode() in out  # what is no pseudonym stays


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(range(len(ACCOUNTS))), TEXT_ST, st.sampled_from(["", "1", "2", "3", "44", "9"]),
                          st.sampled_from(["", "1", "55", "44"]), st.sampled_from(MENTIONS + ["[\"1\"]", "1, 2", " [ 44 ]"]),
                          st.sampled_from([b"\n", b"\r\n"])), min_size=1, max_size=25),
       st.booleans(), st.sampled_from([None, 150, 700]))
def test_random_masters_import_identically(rows, ledger, chunk):
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        _write(src / "ds_users_csv_unhashed.csv", USER_COLS, [user_row(a) for a in ACCOUNTS], [b"\n"])
        recs = [tweet_row(str(500 + n), ACCOUNTS[a], text, in_reply_to_userid=rep, retweet_userid=rt,
                          user_mentions=m) for n, (a, text, rep, rt, m, _) in enumerate(rows)]
        _write(src / "ds_tweets_csv_unhashed.csv", TWEET_COLS, recs, [t for *_, t in rows])
        _same(src, LEDGER if ledger else None, chunk)


@settings(max_examples=300, deadline=None)
@given(TEXT_ST, st.sampled_from(["", "x", "é", "@"]), st.sets(st.sampled_from(["below", "at", "dec", "x_3", "a"])))
def test_handle_marks_read_what_the_handle_regexes_read(text, tail, names):
    """handles.handle_marks on a CSV field's bytes: the tokens extract_handles finds, and the handles
    replace_handles replaces (spliced at the marks, the same text)."""
    text += tail
    raw = ('"' + text.replace('"', '""') + '"').encode()
    at = [k for k, c in enumerate(raw) if c == 0x40]
    runs, tokens = handles.handle_marks(raw, at)
    assert {t for t in tokens if t} == handles.extract_handles(text)
    mapping = {n: f"P{k}=" for k, n in enumerate(sorted(names))}
    out, pos = [], 0
    for a, h in zip(at, runs):
        if h in mapping:
            out += [raw[pos:a + 1], mapping[h].encode()]
            pos = a + 1 + len(h)
    out.append(raw[pos:])
    assert b"".join(out)[1:-1].decode().replace('""', '"') == handles.replace_handles(text, mapping)


# --- csvio.canonical_fields against the csv module ------------------------------------------------

FIELD_ST = st.lists(st.sampled_from(["a", '"', ",", "\n", "\r", "\r\n", "é", '""', " ", "x"]), max_size=4).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4).flatmap(lambda n: st.tuples(st.just(n), st.lists(st.tuples(
    st.lists(FIELD_ST, min_size=n, max_size=n), st.sampled_from([b"\n", b"\r\n"])), min_size=1, max_size=4))),
    st.booleans(), st.integers(0, 10**6), st.sampled_from([b"", b'"', b",", b"\n", b"\r", b"a", b"\x00"]))
def test_canonical_fields_agree_with_the_csv_module(shape, drop_last, where, junk):
    """Whenever canonical_fields accepts a block, the csv module reads the same records with the same
    values, split_records the same raw records, and encode_record gives each record's bytes back;
    an unchanged encoded block is always accepted."""
    import csv
    import io

    ncols, rows = shape
    block = b"".join(csvio.encode_record(f, t) for f, t in rows)
    if drop_last:
        block = block[:-len(rows[-1][1])]
    assert csvio.canonical_fields(block, ncols) is not None
    i = where % len(block)
    block = block[:i] + junk + block[i + 1:]
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        return  # callers check UTF-8 first
    f = csvio.canonical_fields(block, ncols)
    if f is None:
        return
    parsed = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    records = csvio.split_records(block)
    assert len(parsed) == len(records) == len(f.ends)
    pos = 0
    for n, row in enumerate(parsed):
        vals = [block[a + 1:b].replace(b'""', b'"').decode() for a, b in zip(f.opens[n], f.closes[n])]
        assert vals == row
        assert int(f.ends[n]) == pos + len(records[n])
        pos = int(f.ends[n])
        assert csvio.encode_record(row, csvio.terminator(records[n])) == records[n]
        assert [bool(f.inner_quotes(c)[n]) for c in range(ncols)] == ['"' in v for v in row]


@pytest.mark.parametrize("fast,batch", [(True, 1), (True, None), (False, None)],
                         ids=["checked-while-written", "rewritten-checked-per-file", "checked-after"])
@pytest.mark.parametrize("broken", ["handles", "references", "authors"])
def test_a_ledger_the_import_fails_to_apply_is_caught_before_publication(tmp_path, monkeypatch, fast, batch, broken):
    """The unhashed variant's proof (inline on fast blocks, the rewritten records in batches of
    REWRITTEN_BATCH bytes or at the file's end; a full pass otherwise) refuses an import whose
    correction left a decided account's @handle, reference or row in place; nothing is published, and
    the problem names the offset in the master file where the record was read."""
    from workers.engine import correct
    from workers.engine.errors import VerificationFailed

    real = correct.Corrector.changes

    def sloppy(self, author, refs, mentions, text, profile=()):
        res = real(self, author, refs, mentions, text, profile)
        if res is correct.DROP:
            return [] if broken == "authors" else res
        drop = {"handles": {"tweet_text"}, "references": {"in_reply_to_userid", "retweet_userid", "user_mentions"},
                "authors": set()}[broken]
        return [(n, v) for n, v in res if n not in drop]

    monkeypatch.setattr(correct.Corrector, "changes", sloppy)
    monkeypatch.setattr(fastimport, "FAST", fast)
    if batch is not None:
        monkeypatch.setattr(fastimport, "REWRITTEN_BATCH", batch)
    src = _master(tmp_path, random.Random(4), 80)
    eng = Engine(tmp_path / "data", KEY, "k")
    want = {"handles": "@handle", "references": "holds a corrected account's id|lists a corrected",
            "authors": "removed account's row"}[broken]
    with pytest.raises(VerificationFailed, match=want) as e:
        eng.import_dataset(src, "ds", decisions=LEDGER)
    # Fast blocks are proven while written, on the values read; the rest by a pass over the written file.
    assert ("record read at byte" in str(e.value)) is fast and "ds unhashed/ds_tweets_csv_unhashed.csv" in str(e.value)
    if fast:
        master = (src / "ds_tweets_csv_unhashed.csv").read_bytes()
        for at in map(int, re.findall(r"record read at byte (\d+)", str(e.value))):
            assert master[at - 1:at] == b"\n" and master[at:at + 1] == b'"'  # a record starts there
    assert "ds" not in eng.store.read_head()["datasets"]
