"""The one-pass rewrite: checks riding along while writing, directory screen names, block reading, the writer."""

from __future__ import annotations

import hashlib
import io

import pytest

from workers.engine import correct
from workers.engine.api import BadCorrection, VerificationFailed
from workers.engine.csvio import encode_record, iter_blocks, split_records
from workers.engine.hashing import pseudonym
from workers.engine.search import Needles
from workers.engine.store import HashingWriter
from workers.engine.verify import Forbidden, RewriteCheck

from .conftest import KEY, TWEET_COLS, USER_COLS, acct, tweet_row, user_row, write_csv
from .test_corrections import read, rows

GHOST = "4242"  # referred to by id and @handle, never an author: the data does not know its name
HANDLE_ONLY = "9999"  # never referred to by id, only as @Only_Handle


def make_delta(src, name="delta"):
    src.mkdir(parents=True, exist_ok=True)
    write_csv(src / f"{name}_users_csv_unhashed.csv", USER_COLS, [user_row(acct("555"))])
    q = acct("555")
    write_csv(src / f"{name}_tweets_csv_unhashed.csv", TWEET_COLS, [
        tweet_row("300", q, "hi @Ghost_Acct and @ghost_acctx", user_mentions="[4242]",
                  in_reply_to_userid="4242", in_reply_to_tweetid="1"),
        tweet_row("301", q, "cc @only_HANDLE, not @Only_Handle_2"),
        tweet_row("302", q, "by handle only: @GHOST_ACCT!"),
        tweet_row("303", q, "nothing here"),
    ])
    return src


@pytest.fixture
def delta(engine, tmp_path):
    engine.import_dataset(make_delta(tmp_path / "src_delta"), "delta")
    return engine


def test_directory_screen_name_fills_the_gap(delta):
    p1 = pseudonym(KEY, GHOST, 1)
    plan = delta.plan([(GHOST, "remove")], screen_names={GHOST: "Ghost_Acct"})
    assert plan.datasets["delta"]["unhashed"]["rows_rewritten"] == 2  # 300 by id and handle, 302 by handle
    res = delta.apply("b1", [(GHOST, "remove")], screen_names={GHOST: "Ghost_Acct"})
    assert res.releases == {"delta": 2}
    for variant in ("hashed", "unhashed"):
        by_id = {r["tweetid"]: r for r in rows(read(delta, "delta", f"delta_tweets_csv_{variant}.csv"))}
        assert by_id["300"]["tweet_text"] == f"hi @{p1} and @ghost_acctx"  # the longer handle is another account
        assert by_id["300"]["user_mentions"] == f"[{p1}]" and by_id["300"]["in_reply_to_userid"] == p1
        assert by_id["302"]["tweet_text"] == f"by handle only: @{p1}!"
        assert by_id["301"]["tweet_text"] == "cc @only_HANDLE, not @Only_Handle_2"
    assert delta.verify("delta").ok


def test_without_the_directory_the_handle_stays(delta):
    delta.apply("b1", [(GHOST, "remove")])
    text = read(delta, "delta", "delta_tweets_csv_unhashed.csv").decode()
    assert "@Ghost_Acct" in text and "4242" not in text  # the id is replaced, the unknown handle cannot be


def test_account_known_only_by_handle(delta):
    assert delta.apply("b0", [(HANDLE_ONLY, "rehash")]).noop  # nothing the engine can find by itself
    res = delta.apply("b1", [(HANDLE_ONLY, "rehash")], screen_names={HANDLE_ONLY: "Only_Handle"})
    assert res.releases == {"delta": 2}
    by_id = {r["tweetid"]: r for r in rows(read(delta, "delta", "delta_tweets_csv_hashed.csv"))}
    assert by_id["301"]["tweet_text"] == f"cc @{pseudonym(KEY, HANDLE_ONLY, 1)}, not @Only_Handle_2"


def test_directory_name_does_not_override_the_data(world):
    # The engine knows target_x from the data; a (wrong) directory name is not used.
    world.apply("b1", [("1000", "rehash")], screen_names={"1000": "BigNews"})
    text = read(world, "alpha", "alpha_tweets_csv_unhashed_1.csv").decode()
    assert "@BigNews" in text and "@TARGET_X" not in text


@pytest.mark.parametrize("names", [{"1000": "not a handle"}, {"1000": ""}, {"1000": 5}])
def test_bad_directory_names_refused(world, names):
    with pytest.raises(BadCorrection):
        world.apply("b1", [("1000", "remove")], screen_names=names)
    with pytest.raises(BadCorrection):
        world.plan([("1000", "remove")], screen_names=names)


def test_a_trace_left_by_the_rewrite_fails_verification(world, monkeypatch):
    # A corrector that forgets @handles: verification over the written bytes must catch it.
    monkeypatch.setattr(correct.Corrector, "fix_text", lambda self, text: text)
    with pytest.raises(VerificationFailed, match="@handle"):
        world.apply("b1", [("1000", "rehash")])
    assert world.get_dataset("alpha").current_version == 1
    assert world.batch_result("b1") is None
    assert not [p for p in (world.data_dir / "staging").iterdir()]


def test_a_rewrite_touching_other_bytes_fails_verification(world, monkeypatch):
    real = correct.Corrector.row

    def sloppy(self, fields, cols):
        new = real(self, fields, cols)
        if isinstance(new, list) and "tweet_time" in cols:
            new[cols["tweet_time"]] = "1999-01-01 00:00"  # not a field a correction may change
        return new

    monkeypatch.setattr(correct.Corrector, "row", sloppy)
    with pytest.raises(VerificationFailed, match="column tweet_time changed"):
        world.apply("b1", [("1000", "rehash")])
    assert world.get_dataset("alpha").current_version == 1


COLS = ["userid", "user_screen_name", "tweet_text", "tweet_time"]


def _block(*recs):
    return b"".join(encode_record(r) for r in recs)


def _check():
    fb = Forbidden(ids=frozenset({"1000"}), pseudonyms=frozenset(), screen_names=frozenset({"target_x"}),
                   removed_ids=frozenset({"1000"}))
    return RewriteCheck(fb, COLS, "t")


def _hits(buf):
    """What the rewriter's search finds: the forbidden needles of _check()."""
    return Needles.of(_check().cs_needles, _check().ci_needles).find(buf)


def test_rewrite_check_proves_identity_and_edits():
    a, b, c = ["1", "x", "a\n\"b\"", "t1"], ["1000", "target_x", "mine", "t2"], ["2", "y", "hi @target_x", "t3"]
    old = _block(a, b, c)
    s = len(encode_record(a))
    e = s + len(encode_record(b))
    c_new = ["2", "y", "hi @P", "t3"]
    edits = [(s, e, None), (e, len(old), encode_record(c_new))]
    ok = _check()
    ok.window(old, 0, len(old), edits, _hits(old), correct.splice(0, len(old), edits))
    assert ok.problems == []

    bad = _check()  # a parent range written twice / the window not tiled
    bad.window(old, 0, len(old), [], [], [(0, s), (0, len(old))])
    assert "not written as its parent with exactly the declared edits" in bad.problems[0]

    bad = _check()  # an untouched window cut short
    bad.window(old, 0, len(old), [], [], [(0, len(old) - 1)])
    assert "declared edits" in bad.problems[0]

    bad = _check()  # an edit that starts inside a record
    wrong = [(s + 3, e, None), (e, len(old), encode_record(c_new))]
    bad.window(old, 0, len(old), wrong, _hits(old), correct.splice(0, len(old), wrong))
    assert any("whole record" in p for p in bad.problems)

    bad = _check()  # new bytes written that are not the declared edits
    bad.window(old, 0, len(old), edits, _hits(old), correct.splice(0, len(old), edits) + [b"x"])
    assert any("declared edits" in p for p in bad.problems)

    bad = _check()  # the trace is still there: its record was not edited
    only_b = [(s, e, None)]
    bad.window(old, 0, len(old), only_b, _hits(old), correct.splice(0, len(old), only_b))
    assert any("@handle" in p for p in bad.problems)

    bad = _check()  # a rewritten record that still holds the trace
    c_bad = ["2", "y", "hi @TARGET_X", "t3"]
    still = [(s, e, None), (e, len(old), encode_record(c_bad))]
    bad.window(old, 0, len(old), still, _hits(old), correct.splice(0, len(old), still))
    assert any("@handle" in p for p in bad.problems)

    bad = _check()  # a removed account's row rewritten instead of dropped
    b2 = ["1000", "P", "mine", "t2"]
    kept = [(s, e, encode_record(b2)), (e, len(old), encode_record(c_new))]
    bad.window(old, 0, len(old), kept, _hits(old), correct.splice(0, len(old), kept))
    assert any("removed account" in p for p in bad.problems)


def test_unedited_window_uses_the_rewriters_hits():
    # The written bytes are the searched bytes: their hits are checked without a second search.
    c = ["2", "y", "hi @TARGET_X", "t3"]
    old = _block(["1", "x", "a", "t1"], c)
    chk = _check()
    chk.window(old, 0, len(old), [], _hits(old), [(0, len(old))])
    assert any("@handle" in p for p in chk.problems)
    chk = _check()
    chk.window(old, 0, len(old), [], [], [(0, len(old))])
    assert chk.problems == []  # nothing searched again: the rewriter's search is the proof


class _Unseekable(io.RawIOBase):
    def __init__(self, data):
        self._b = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, buf):
        return self._b.readinto(buf)


@pytest.mark.parametrize("chunk", [5, 16, 64, 10_000])
def test_blocks_are_whole_records_seekable_or_not(chunk):
    recs = [encode_record([str(i), "x" * (i % 40), 'q"\n"' * (i % 3), ""]) for i in range(60)]
    data = b"".join(recs)
    for f in (io.BytesIO(data), io.BufferedReader(_Unseekable(data))):
        blocks = list(iter_blocks(f, chunk))
        assert b"".join(b for b, _ in blocks) == data
        assert [r for b, _ in blocks for r in split_records(b)] == recs
        lines = [line for _, line in blocks]
        assert lines[0] == 1 and lines == sorted(lines)


def test_hashing_writer_writes_hashes_and_aborts(tmp_path, monkeypatch):
    monkeypatch.setattr(HashingWriter, "WRITEBACK", 4096)  # writeback is started several times
    parts = [b"abc" * 1000, memoryview(b"xyz" * 5000), b"", b"tail"]
    with HashingWriter(tmp_path / "f") as w:
        for p in parts:
            w.write(p)
        sha = w.close()
    want = b"".join(bytes(p) for p in parts)
    assert (tmp_path / "f").read_bytes() == want and sha == hashlib.sha256(want).hexdigest() and w.bytes == len(want)
    assert w.close() == sha  # closing twice is harmless
    with pytest.raises(RuntimeError):
        with HashingWriter(tmp_path / "g") as w2:
            w2.write(b"x" * 100)
            raise RuntimeError("caller failed")
    with pytest.raises(ValueError):
        w2.write(b"more")  # aborted: the file is closed


@pytest.mark.parametrize("sort_runs", [0, 1000], ids=["merged", "sorted-together"])
def test_duplicate_tweet_ids_found_across_spilled_runs(engine, tmp_path, monkeypatch, sort_runs):
    from workers.engine import importer
    from workers.engine.api import ImportFailed

    from .conftest import make_alpha

    monkeypatch.setattr(importer, "RUN", 2)  # many tiny runs on disk, merged back or sorted together
    monkeypatch.setattr(importer, "DUP_SORT_RUNS", sort_runs)
    engine.import_dataset(make_alpha(tmp_path / "ok"), "alpha")
    src = make_alpha(tmp_path / "dup", "dup")
    q = acct("555")
    write_csv(src / "dup_tweets_csv_unhashed_2.csv", TWEET_COLS,
              [tweet_row("20", q, "a"), tweet_row("21", q, "b"), tweet_row("4", q, "same id as part 1")])
    with pytest.raises(ImportFailed, match="duplicate tweetid 4"):
        engine.import_dataset(src, "dup")
