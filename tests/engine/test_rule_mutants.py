"""The hashing and correction rules pinned value by value: the fast tests tools/mutation.sh runs against
workers/engine/hashing.py and workers/engine/correct.py (each one kills mutants the broader tests let live)."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.engine import correct, csvio, hashing
from workers.engine.correct import DROP, Corrector, FileChange, Target
from workers.engine.hashing import pseudonym
from workers.engine.store import HashingWriter

# Known answers, computed outside Python:  printf '1000:0' | openssl dgst -sha256 -hmac k -binary | base64
KA = {("1000", 0): "+nWWnud1rFl37hYJf9TZH4zlJcVyu0kAJtJ1ggdsDiw=",
      ("1000", 1): "ub7gVl9+QZO9vxZ1xLJF7GHPMRaN4YD/ihVPsJ8rSRQ=",
      ("0", 0): "PCn0q2qdE1KQtp3fRTTB72veaNx5xJNbESrRUGZSr/Y="}


# --- hashing.py --------------------------------------------------------------------------------

@pytest.mark.parametrize("uid, epoch", sorted(KA))
def test_pseudonym_known_answers(uid, epoch):
    # Standard base64 (with '+' and '/'), padding kept, input "<userid>:<epoch>" in UTF-8, HMAC-SHA-256.
    assert pseudonym(b"k", uid, epoch) == KA[(uid, epoch)]


def test_pseudonym_depends_on_key_id_and_epoch():
    assert len({pseudonym(b"k", "1000", 0), pseudonym(b"k2", "1000", 0), pseudonym(b"k", "1001", 0),
                pseudonym(b"k", "1000", 2)}) == 4
    # printf '\xc3\xa9:0' | openssl dgst -sha256 -hmac k -binary | base64  (the id is encoded as UTF-8)
    assert pseudonym(b"k", "\u00e9", 0) == "sgXfElkkPbpcFwkRxOibkPyEpSy3k3+WBKcVx17jvRc="


def test_account_digest_known_answer():
    # printf 'appeals-account-state:1000' | openssl dgst -sha256 -hmac k
    assert hashing.account_digest(b"k", "1000") == "291434a9d82491f301ec838122f53997285bc0f0809118b8117f81f7365c5094"


@pytest.mark.parametrize("followers, hashed", [(0, True), (4999, True), (5000, False), (5001, False)])
def test_threshold_is_below_5000(followers, hashed):
    assert hashing.is_hashed(followers) is hashed
    assert hashing.HASH_FOLLOWER_THRESHOLD == 5000


def test_hashed_file_name():
    assert hashing.hashed_file_name("ira_tweets_csv_unhashed_1.csv") == "ira_tweets_csv_hashed_1.csv"
    assert hashing.hashed_file_name("a_unhashed_b_unhashed.zip") == "a_unhashed_b_hashed.zip"  # the last one
    with pytest.raises(ValueError, match="not an unhashed file name: ira_users.csv"):
        hashing.hashed_file_name("ira_users.csv")


COLS = ["tweetid", "userid", "user_display_name", "user_screen_name", "user_reported_location", "tweet_text",
        "in_reply_to_userid", "retweet_userid", "user_mentions"]
C = {n: i for i, n in enumerate(COLS)}
PS = {"1": "P1", "2": "P2"}


def row(**kw) -> list[str]:
    base = {"tweetid": "9", "userid": "7", "user_display_name": "D", "user_screen_name": "S",
            "user_reported_location": "L", "tweet_text": "@S hi 1", "in_reply_to_userid": "",
            "retweet_userid": "", "user_mentions": "[]"}
    base.update(kw)
    return [base[c] for c in COLS]


def test_hash_row_author_fields():
    fields = row(userid="1")
    new = hashing.hash_row(fields, C, PS)
    assert new == row(userid="P1", user_display_name="P1", user_screen_name="P1")
    assert fields == row(userid="1")  # the input is left alone


@pytest.mark.parametrize("col", ["in_reply_to_userid", "retweet_userid"])
def test_hash_row_each_reference_field(col):
    assert hashing.hash_row(row(**{col: "2"}), C, PS) == row(**{col: "P2"})
    assert hashing.hash_row(row(**{col: "3"}), C, PS) is None


def test_hash_row_both_references_and_author_at_once():
    new = hashing.hash_row(row(userid="1", in_reply_to_userid="2", retweet_userid="1", user_mentions="[2, 7]"), C, PS)
    assert new == row(userid="P1", user_display_name="P1", user_screen_name="P1", in_reply_to_userid="P2",
                      retweet_userid="P1", user_mentions="[P2, 7]")


def test_hash_row_mentions_and_unchanged_rows():
    assert hashing.hash_row(row(user_mentions="['2', '1']"), C, PS) == row(user_mentions="['P2', 'P1']")
    assert hashing.hash_row(row(user_mentions="[7]"), C, PS) is None
    assert hashing.hash_row(row(user_mentions=""), C, PS) is None
    assert hashing.hash_row(row(), C, PS) is None


def test_hash_row_without_optional_columns():
    cols = {"userid": 0, "in_reply_to_userid": 1}
    assert hashing.hash_row(["1", "2"], cols, PS) == ["P1", "P2"]
    assert hashing.hash_row(["x", "2"], {"in_reply_to_userid": 1}, PS) == ["x", "P2"]
    assert hashing.hash_row(["7"], {"user_mentions": 0}, PS) is None
    assert hashing.hash_row(["[1]"], {"user_mentions": 0}, PS) == ["[P1]"]


@pytest.mark.parametrize("name, parts", [
    ("1000/images/1-1.jpg", ("1000", "/images/1-1.jpg")),
    ("ab/images/cd/images/1-1.jpg", ("ab/images/cd", "/images/1-1.jpg")),  # a pseudonym may hold '/'
    ("1000/other/1-1.jpg", ("1000", "/other/1-1.jpg")),
    ("1000", ("1000", "")),
])
def test_split_member(name, parts):
    assert hashing.split_member(name) == parts


# --- correct.py --------------------------------------------------------------------------------

TCOLS = ["userid", "user_display_name", "user_screen_name", "user_reported_location", "user_profile_description",
         "user_profile_url", "tweet_text", "in_reply_to_userid", "retweet_userid", "user_mentions", "like_count"]
TC = {n: i for i, n in enumerate(TCOLS)}
OLD = pseudonym(b"k", "1000", 0)


def target(action="rehash", uid="1000", names=("target_x",)):
    return Target(uid, action, frozenset({uid, pseudonym(b"k", uid, 0)}), frozenset(names),
                  (pseudonym(b"k", uid, 0),), "NEW" + uid)


def trow(**kw) -> list[str]:
    base = dict.fromkeys(TCOLS, "")
    base.update({"userid": "7", "user_display_name": "D", "user_screen_name": "S", "user_reported_location": "L",
                 "user_profile_description": "PD", "user_profile_url": "U", "tweet_text": "t",
                 "user_mentions": "[]", "like_count": "3"})
    base.update(kw)
    return [base[c] for c in TCOLS]


def test_corrector_maps():
    fix = Corrector([target("rehash"), target("remove", "2000", ("Other",))])
    assert fix.id_map == {"1000": "NEW1000", OLD: "NEW1000", "2000": "NEW2000",
                          pseudonym(b"k", "2000", 0): "NEW2000"}
    assert fix.removed == {"2000", pseudonym(b"k", "2000", 0)}
    assert fix.sn_map == {"target_x": "NEW1000", "Other": "NEW2000"}
    assert fix.pseudo_map == {OLD: "NEW1000", pseudonym(b"k", "2000", 0): "NEW2000"}
    assert fix.cs_needles == sorted(x.encode() for x in fix.id_map)
    assert fix.ci_needles == [b"other", b"target_x"]


def test_corrector_without_targets_has_no_needles():
    fix = Corrector([Target("", "rehash", frozenset({""}), frozenset({""}), (), "N")])
    assert fix.cs_needles == [] and fix.ci_needles == []
    assert fix.fix_text("@ alone, @x and @") == "@ alone, @x and @"  # an empty name matches no handle


@pytest.mark.parametrize("author", ["1000", OLD])
def test_row_rehash_author(author):
    fix = Corrector([target()])
    new = fix.row(trow(userid=author), TC)
    assert new == trow(userid="NEW1000", user_display_name="NEW1000", user_screen_name="NEW1000",
                       user_reported_location="", user_profile_description="", user_profile_url="")


@pytest.mark.parametrize("author", ["1000", OLD])
def test_row_remove_author(author):
    assert Corrector([target("remove")]).row(trow(userid=author), TC) is DROP


@pytest.mark.parametrize("action", ["rehash", "remove"])
def test_row_references(action):
    fix = Corrector([target(action)])
    assert fix.row(trow(in_reply_to_userid="1000"), TC) == trow(in_reply_to_userid="NEW1000")
    assert fix.row(trow(retweet_userid=OLD), TC) == trow(retweet_userid="NEW1000")
    assert fix.row(trow(user_mentions="[1000, 10000]"), TC) == trow(user_mentions="[NEW1000, 10000]")
    assert fix.row(trow(user_mentions="['100', '1000']"), TC) == trow(user_mentions="['100', 'NEW1000']")


def test_row_text_handles_and_pseudonyms():
    fix = Corrector([target(names=("target_x",))])
    assert fix.row(trow(tweet_text="RT @TARGET_X: hi @target_xy @Target_X"), TC) == \
        trow(tweet_text="RT @NEW1000: hi @target_xy @NEW1000")
    assert fix.row(trow(tweet_text=f"old {OLD} twice {OLD}"), TC) == trow(tweet_text="old NEW1000 twice NEW1000")
    assert fix.fix_text("no handle target_x") == "no handle target_x"


def test_row_untouched_is_none_and_columns_may_be_missing():
    fix = Corrector([target()])
    assert fix.row(trow(user_mentions="[10000]", tweet_text="@target_xy 1000"), TC) is None
    assert fix.row(trow(user_mentions=""), TC) is None
    assert fix.row(["1000", "D"], {"userid": 0, "user_display_name": 1}) == ["NEW1000", "NEW1000"]
    assert fix.row(["x", "1000"], {"retweet_userid": 1}) == ["x", "NEW1000"]
    assert fix.row(["[1000]"], {"user_mentions": 0}) == ["[NEW1000]"]
    assert fix.row(["@Target_X"], {"tweet_text": 0}) == ["@NEW1000"]


def test_row_leaves_its_input_alone():
    fields = trow(userid="1000")
    Corrector([target()]).row(fields, TC)
    assert fields == trow(userid="1000")


@pytest.mark.parametrize("name, new", [
    ("1000/images/1-1.jpg", "NEW1000/images/1-1.jpg"),
    (OLD + "/images/1-1.jpg", "NEW1000/images/1-1.jpg"),
    ("10000/images/1-1.jpg", "10000/images/1-1.jpg"),
])
def test_member_rehash(name, new):
    assert Corrector([target()]).member(name) == new


def test_member_remove():
    fix = Corrector([target("remove")])
    assert fix.member("1000/images/1-1.jpg") is None and fix.member(OLD + "/images/2-1.png") is None
    assert fix.member("10000/images/1-1.jpg") == "10000/images/1-1.jpg"


def test_hit_records_and_splice():
    buf = b'"a"\n"b1000"\n"c"\n"d1000"\n'
    assert list(correct.hit_records(buf, [5, 6, 18])) == [(4, 12), (16, 24)]
    assert list(correct.hit_records(buf, [])) == []
    assert list(correct.hit_records(buf, [17], 16)) == [(16, 24)]
    assert correct.splice(0, 24, [(4, 12, b"X\n"), (16, 24, None)]) == [(0, 4), b"X\n", (12, 16)]
    assert correct.splice(0, 10, [(0, 10, None)]) == []
    assert correct.splice(2, 10, []) == [(2, 10)]
    assert correct.splice(0, 8, [(0, 4, b"Y")]) == [b"Y", (4, 8)]


def _csv(rows: list[list[str]]) -> bytes:
    return csvio.encode_record(TCOLS) + b"".join(csvio.encode_record(r) for r in rows)


def test_rewrite_csv_counts_edits_and_reports_changes():
    rows = [trow(userid="1000"), trow(in_reply_to_userid="1000"), trow(tweet_text="1000 as text only"),
            trow(userid="555", tweet_text="x\r\ny")]
    src = _csv(rows)
    seen = []
    out = io.BytesIO()
    ch = correct.rewrite_csv(src, out, Corrector([target("remove")]), lambda old, cols, new: seen.append((old, new)))
    assert (ch.rows_removed, ch.rows_rewritten) == (1, 1)
    assert out.getvalue() == _csv([trow(in_reply_to_userid="NEW1000"), *rows[2:]])
    assert seen == [(rows[0], None), (rows[1], trow(in_reply_to_userid="NEW1000"))]
    assert [(s, e) for s, e, _ in ch.edits] == [(len(_csv([])), len(_csv(rows[:1]))),
                                                (len(_csv(rows[:1])), len(_csv(rows[:2])))]
    dry = correct.rewrite_csv(src, None, Corrector([target("remove")]))
    assert (dry.rows_removed, dry.rows_rewritten) == (1, 1)


def test_rewrite_csv_keeps_a_record_terminator_and_refuses_a_broken_record():
    src = csvio.encode_record(["userid", "tweet_text"]) + b'"1000","a"\r\n"2","b"\n'
    out = io.BytesIO()
    correct.rewrite_csv(src, out, Corrector([target()]))
    assert out.getvalue() == b'"userid","tweet_text"\n"NEW1000","a"\r\n"2","b"\n'
    with pytest.raises(csvio.CsvProblem, match="record at byte offset 22: invalid UTF-8"):
        correct.rewrite_csv(b'"userid","tweet_text"\n"1000","\xff"\n', None, Corrector([target()]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["1000", "10000", "7", OLD]), min_size=1, max_size=8),
       st.integers(16, 64))
def test_rewrite_csv_equals_row_by_row_in_any_window_size(authors, window):
    # Whatever the window size, the fast path writes what correcting each parsed row would write.
    rows = [trow(userid=a, tweet_text=f"n{i} @Target_X" if i % 3 == 0 else f"n{i}") for i, a in enumerate(authors)]
    src = _csv(rows)
    fix = Corrector([target()])
    want = csvio.encode_record(TCOLS) + b"".join(
        csvio.encode_record(r if (n := fix.row(r, TC)) is None else n) for r in rows)
    old = correct.REWRITE_CHUNK
    correct.REWRITE_CHUNK = window
    try:
        out = io.BytesIO()
        correct.rewrite_csv(src, out, fix)
    finally:
        correct.REWRITE_CHUNK = old
    assert out.getvalue() == want


def test_zip_write_and_scan(tmp_path):
    src = tmp_path / "m.zip"
    with zipfile.ZipFile(src, "w") as z:
        for n in ("1000/images/1-1.jpg", "7/images/2-1.jpg", "1000/images/3-1.jpg"):
            z.writestr(n, b"x")
    fix = Corrector([target("remove")])
    with HashingWriter(tmp_path / "o.zip") as w:
        ch = correct.write_zip(src, w, fix.member, fix.cs_needles)
        w.close()
    assert ch == FileChange(rows_removed=2, rows_rewritten=0,
                            edits=[("1000/images/1-1.jpg", None), ("1000/images/3-1.jpg", None)])
    assert correct.scan_zip(src, fix.member, fix.cs_needles) == ch
    fix = Corrector([target()])
    assert correct.scan_zip(src, fix.member) == FileChange(0, 2, [("1000/images/1-1.jpg", "NEW1000/images/1-1.jpg"),
                                                                  ("1000/images/3-1.jpg", "NEW1000/images/3-1.jpg")])


# --- written for the mutants the tests above let live (docs/testing.md) ------------------------

def test_corrector_keeps_its_targets_and_text_without_handles():
    ts = [target(names=())]
    fix = Corrector(ts)
    assert fix.targets == ts and fix.sn_map == {}
    assert fix.fix_text("@someone mentions " + OLD) == "@someone mentions NEW1000"


def test_hit_records_from_the_first_byte_of_a_record():
    buf = b'1000,"a"\n1000,"b"\n"c"\n'
    assert list(correct.hit_records(buf, [0, 9])) == [(0, 9), (9, 18)]
    assert list(correct.hit_records(b'"a"\n"b1000"\n', [1])) == [(0, 4)]


def test_rewrite_csv_feeds_its_check_and_searches_the_checks_needles_too():
    from workers.engine.verify import Forbidden, RewriteCheck

    rows = [trow(userid="1000"), trow(userid="7", tweet_text="hi @Target_X"), trow(userid="7", tweet_text="5550"),
            trow(userid="7", tweet_text="planted 555")]
    src = _csv(rows)
    fix = Corrector([target()])
    fb = Forbidden(ids=frozenset({"1000", OLD}), pseudonyms=frozenset({OLD}), screen_names=frozenset({"target_x"}),
                   removed_ids=frozenset())
    check = RewriteCheck(fb, TCOLS, "t")
    out = io.BytesIO()
    correct.rewrite_csv(src, out, fix, check=check)
    assert check.problems == []
    # A check that forbids more than the corrector corrects: its needles are searched too, so the record
    # the corrector leaves alone is still read, and the trace is reported.
    fb2 = Forbidden(ids=frozenset({"1000", OLD}), pseudonyms=frozenset({OLD}),
                    screen_names=frozenset({"target_x", "quiet"}), removed_ids=frozenset())
    src2 = _csv([trow(userid="7", user_screen_name="Quiet")])
    check2 = RewriteCheck(fb2, TCOLS, "t")
    correct.rewrite_csv(src2, io.BytesIO(), fix, check=check2)
    assert any("screen name" in p for p in check2.problems), check2.problems
    fb3 = Forbidden(ids=frozenset({"1000", "555"}), pseudonyms=frozenset(), screen_names=frozenset(),
                    removed_ids=frozenset())
    src3 = _csv([trow(userid="7", retweet_userid="555")])
    check3 = RewriteCheck(fb3, TCOLS, "t")
    correct.rewrite_csv(src3, io.BytesIO(), fix, check=check3)
    assert any("retweet_userid holds a corrected account's id" in p for p in check3.problems), check3.problems


def test_rewrite_csv_counts_several_removals_and_passes_columns_to_on_change():
    rows = [trow(userid="1000"), trow(userid=OLD), trow(userid="7")]
    seen = []
    ch = correct.rewrite_csv(_csv(rows), None, Corrector([target("remove")]),
                             lambda old, cols, new: seen.append(cols))
    assert ch.rows_removed == 2 and ch.rows_rewritten == 0
    assert seen == [TC, TC]


def test_rewrite_csv_problem_has_no_line_number():
    with pytest.raises(csvio.CsvProblem) as e:
        correct.rewrite_csv(b'"userid"\n"1000\xff"\n', None, Corrector([target()]))
    assert e.value.line == 0  # offsets, not lines: the caller names the file


def test_scan_zip_asks_rename_only_about_members_holding_the_hint(tmp_path):
    src = tmp_path / "m.zip"
    with zipfile.ZipFile(src, "w") as z:
        for n in ("1000/images/1-1.jpg", "7/images/2-1.jpg", "8/images/3-1.jpg"):
            z.writestr(n, b"x")
    asked = []
    fix = Corrector([target()])

    def spy(name):
        asked.append(name)
        return fix.member(name)

    assert correct.scan_zip(src, spy, fix.cs_needles).rows_rewritten == 1
    assert asked == ["1000/images/1-1.jpg"]
