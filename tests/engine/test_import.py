"""Import: the real sample round trip, every bad input refused with file+line+problem, nothing published."""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
from pathlib import Path

import pytest

from workers.engine.api import ImportFailed
from workers.engine.csvio import encode_record
from workers.engine.hashing import pseudonym

from .conftest import KEY, TWEET_COLS, USER_COLS, make_alpha, make_beta, tweet_row, user_row, write_csv

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "russia_201901_1_tweets_sample.csv"


def test_real_sample_round_trip(engine, tmp_path):
    if not SAMPLE.exists():
        pytest.skip("../shared/data is not present in this checkout")
    name = "russia_201901_1"
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(SAMPLE, src / f"{name}_tweets_csv_unhashed.csv")
    seen = {}
    for r in csv.DictReader(open(SAMPLE, newline="", encoding="utf-8")):
        seen.setdefault(r["userid"], r)
    with open(src / f"{name}_users_csv_unhashed.csv", "wb") as f:
        f.write(encode_record(USER_COLS))
        for r in seen.values():
            f.write(encode_record([r[c] for c in USER_COLS]))
    v = engine.import_dataset(src, name)
    assert v.tweets == 407 and v.accounts == 86
    out = engine.export(name, "unhashed", tmp_path / "out")
    got = (tmp_path / "out" / f"{name}_tweets_csv_unhashed.csv").read_bytes()
    assert hashlib.sha256(got).hexdigest() == "3106d2689e46d666958e3e02604032d0f61b3a1004d9cae2fb4fa2c812ed1e2b"
    assert (tmp_path / "out" / "manifest.json") in out
    engine.export(name, "hashed", tmp_path / "pub")
    hashed = list(csv.DictReader(open(tmp_path / "pub" / f"{name}_tweets_csv_hashed.csv", newline="", encoding="utf-8")))
    clear = [r for r in hashed if int(r["follower_count"]) >= 5000]
    assert {r["userid"] for r in clear} == {r["userid"] for r in seen.values() if int(r["follower_count"]) >= 5000}
    some = next(u for u, r in seen.items() if int(r["follower_count"]) < 5000)
    assert pseudonym(KEY, some, 0) in {r["userid"] for r in hashed}
    assert engine.verify(name).ok
    # Correct one account of the real sample: untouched records stay byte-identical.
    res = engine.apply("s1", [(some, "remove")])
    assert res.releases == {name: 2} and engine.verify(name).ok


def _src(tmp_path) -> Path:
    return make_alpha(tmp_path / "src", "ds")


def _expect_refused(engine, src, needle_file, needle_line, needle_problem):
    with pytest.raises(ImportFailed) as e:
        engine.import_dataset(src, "ds")
    msg = str(e.value)
    assert needle_file in msg and needle_problem in msg, msg
    if needle_line is not None:
        assert f"line {needle_line}" in msg, msg
    assert engine.list_datasets() == []
    assert not any((engine.data_dir / "staging").iterdir())
    return msg


def _rewrite(path: Path, old: bytes, new: bytes):
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))


BAD = {
    "missing_column": ("ds_users_csv_unhashed.csv", lambda s: _rewrite(s / "ds_users_csv_unhashed.csv", b'"follower_count"', b'"followers"'), 1, "missing column 'follower_count'"),
    "non_utf8": ("ds_tweets_csv_unhashed_1.csv", lambda s: _rewrite(s / "ds_tweets_csv_unhashed_1.csv", b"unicode", b"unic\xffde"), None, "UTF-8"),
    "unterminated": ("ds_tweets_csv_unhashed_2.csv", lambda s: (s / "ds_tweets_csv_unhashed_2.csv").write_bytes((s / "ds_tweets_csv_unhashed_2.csv").read_bytes() + b'"23","555,x\n'), 9, "unterminated"),
    "unknown_author": ("ds_tweets_csv_unhashed_2.csv", lambda s: write_csv(s / "ds_tweets_csv_unhashed_2.csv", TWEET_COLS, [tweet_row("30", {"userid": "999", "user_display_name": "x", "user_screen_name": "x", "follower_count": "1"}, "t")]), 2, "not in the users file"),
    "duplicate_tweetid": ("ds_tweets_csv_unhashed_2.csv", lambda s: write_csv(s / "ds_tweets_csv_unhashed_2.csv", TWEET_COLS, [tweet_row("30", {"userid": "555", "user_display_name": "q", "user_screen_name": "q", "follower_count": "1"}, "t"), tweet_row("3", {"userid": "555", "user_display_name": "q", "user_screen_name": "q", "follower_count": "1"}, "t")]), 4, "duplicate tweetid 3"),  # rows span 2 lines (multi-line profile)
    "unknown_file": ("README.txt", lambda s: (s / "README.txt").write_text("hi"), None, "unknown file"),
    "missing_users": ("ds_users_csv_unhashed.csv", lambda s: (s / "ds_users_csv_unhashed.csv").unlink(), None, "missing file"),
    "field_count": ("ds_users_csv_unhashed.csv", lambda s: (s / "ds_users_csv_unhashed.csv").write_bytes((s / "ds_users_csv_unhashed.csv").read_bytes() + b'"1","2"\n'), 12, "expected 10 fields"),
    "bad_member": ("ds_tweet_media_unhashed_1.zip", lambda s: __import__("tests.engine.conftest", fromlist=["x"]).write_zip(s / "ds_tweet_media_unhashed_1.zip", {"999/images/1-1.jpg": b"x"}), None, "not in the users file"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_refused_then_fixed(engine, tmp_path, case):
    file, breaker, line, problem = BAD[case]
    src = _src(tmp_path)
    breaker(src)
    msg = _expect_refused(engine, src, file, line, problem)
    assert "Traceback" not in msg
    shutil.rmtree(src)
    _src(tmp_path)
    assert engine.import_dataset(src, "ds").version == 1


def test_existing_name_refused(engine, tmp_path):
    engine.import_dataset(_src(tmp_path), "ds")
    with pytest.raises(ImportFailed, match="already exists"):
        engine.import_dataset(_src(tmp_path), "ds")
    assert engine.get_dataset("ds").current_version == 1


def test_part_styles_ordered_numerically(engine, tmp_path):
    src = tmp_path / "p"
    src.mkdir()
    write_csv(src / "p_users_csv_unhashed.csv", USER_COLS, [user_row({"userid": "1", "user_display_name": "a", "user_screen_name": "a", "follower_count": "1"})])
    a = {"userid": "1", "user_display_name": "a", "user_screen_name": "a", "follower_count": "1"}
    for n in (10, 2, 1):
        write_csv(src / f"p_tweets_csv_unhashed_part{n:02d}.csv", TWEET_COLS, [tweet_row(str(n), a, "x")])
    v = engine.import_dataset(src, "p")
    assert [f.path for f in v.files if f.variant == "unhashed"][1:] == [
        "p_tweets_csv_unhashed_part01.csv", "p_tweets_csv_unhashed_part02.csv", "p_tweets_csv_unhashed_part10.csv"]


def test_2018_column_order_and_unquoted_urls(engine, tmp_path):
    src = make_beta(tmp_path / "b")
    engine.import_dataset(src, "beta")
    out = engine.export("beta", "unhashed", tmp_path / "o")
    assert (tmp_path / "o" / "beta_tweets_csv_unhashed.csv").read_bytes() == (src / "beta_tweets_csv_unhashed.csv").read_bytes()
    assert len(out) == 3
    # One row refers to 777 both by id and by @handle: counted twice, as FootprintEntry documents.
    assert engine.footprint("777")[0].referring_rows == 1  # one row names it by id and by @handle
