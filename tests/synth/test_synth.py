"""Tests of the synthetic dataset generator (workers.engine.synth) and its CLI."""

from __future__ import annotations

import csv
import io
import re
import struct
import tracemalloc
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from workers.cli.synth import synth as synth_cmd
from workers.engine.synth import (TWEETS_COLUMNS, TWEETS_COLUMNS_2018, USERS_COLUMNS,
                                  dataset_names, generate)

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "russia_201901_1_tweets_sample.csv"
SEED = 7
TWEETS = 9000
PER_FILE = 1500


def _read(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def _dicts(path: Path) -> list[dict[str, str]]:
    rows = _read(path)
    return [dict(zip(rows[0], r)) for r in rows[1:]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three datasets, split tweet files, media; parsed once for all tests."""
    out = tmp_path_factory.mktemp("synth")
    result = generate(out, 3, TWEETS, SEED, tweets_per_file=PER_FILE, users_per_dataset=80)
    data = {}
    for ds in result:
        users = _dicts(ds.dir / f"{ds.name}_users_csv_unhashed.csv")
        tweets = []
        for p in ds.files:
            if "_tweets_csv_unhashed" in p.name:
                tweets.extend(_dicts(p))
        data[ds.name] = {"ds": ds, "users": users, "tweets": tweets}
    return out, result, data


def _all_users(data):
    return {u["userid"]: (name, u) for name, d in data.items() for u in d["users"]}


def test_layout_and_counts(corpus):
    out, result, data = corpus
    assert [d.name for d in result] == ["synth_a", "synth_b", "synth_c"]
    assert sum(d.tweets for d in result) == TWEETS
    for ds in result:
        assert ds.dir == out / ds.name
        names = sorted(p.name for p in ds.files)
        assert all(p.parent == ds.dir and p.exists() for p in ds.files)
        assert f"{ds.name}_users_csv_unhashed.csv" in names
        parts = sorted((p for p in names if "_tweets_csv_unhashed" in p),
                       key=lambda n: int(re.search(r"_(\d+)\.csv$", n).group(1)))
        assert len(parts) == -(-ds.tweets // PER_FILE)
        assert parts == [f"{ds.name}_tweets_csv_unhashed_{k}.csv" for k in range(1, len(parts) + 1)]
        sizes = [len(_read(ds.dir / p)) - 1 for p in parts]
        assert all(s == PER_FILE for s in sizes[:-1]) and 0 < sizes[-1] <= PER_FILE
        assert sum(sizes) == ds.tweets == len(data[ds.name]["tweets"])
        assert ds.users == len(data[ds.name]["users"])
        assert any(re.fullmatch(rf"{ds.name}_tweet_media_unhashed_\d+\.zip", n) for n in names)
        # Nothing else in the directory than what was reported.
        assert sorted(p.name for p in ds.dir.iterdir()) == names


def test_single_tweets_file_when_under_limit(tmp_path):
    res = generate(tmp_path, ["alpha"], 50, 1, tweets_per_file=50, media=False)
    assert sorted(p.name for p in res[0].files) == ["alpha_tweets_csv_unhashed.csv",
                                                    "alpha_users_csv_unhashed.csv"]
    assert not list(tmp_path.glob("**/*.zip"))


def test_deterministic_for_a_seed(tmp_path):
    def snapshot(d):
        return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}
    generate(tmp_path / "a", 2, 1200, 42, tweets_per_file=300)
    generate(tmp_path / "b", 2, 1200, 42, tweets_per_file=300)
    generate(tmp_path / "c", 2, 1200, 43, tweets_per_file=300)
    a, b, c = snapshot(tmp_path / "a"), snapshot(tmp_path / "b"), snapshot(tmp_path / "c")
    assert a == b
    assert a.keys() and any(a[k] != c.get(k) for k in a)


def test_encoding_is_the_archive_encoding(corpus):
    """Every field quoted, LF endings, UTF-8 without BOM: re-serialising gives the same bytes."""
    out, result, data = corpus
    for ds in result:
        for p in ds.files:
            if p.suffix != ".csv":
                continue
            raw = p.read_bytes()
            assert not raw.startswith(b"\xef\xbb\xbf")
            assert b"\r" not in raw
            rows = _read(p)
            buf = io.StringIO()
            csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
            assert buf.getvalue().encode("utf-8") == raw, p.name


def test_headers_and_column_orders(corpus):
    out, result, data = corpus
    for i, ds in enumerate(result):
        for p in ds.files:
            if p.suffix != ".csv":
                continue
            rows = _read(p)
            if "_users_" in p.name:
                assert rows[0] == USERS_COLUMNS
                assert all(len(r) == 10 for r in rows)
            else:
                # One dataset in three uses the 2018 `ira` order.
                assert rows[0] == (TWEETS_COLUMNS_2018 if i % 3 == 1 else TWEETS_COLUMNS)
                assert all(len(r) == 31 for r in rows)
    assert sorted(TWEETS_COLUMNS) == sorted(TWEETS_COLUMNS_2018) and len(set(TWEETS_COLUMNS)) == 31
    assert TWEETS_COLUMNS_2018.index("in_reply_to_tweetid") < TWEETS_COLUMNS_2018.index("in_reply_to_userid")


def test_header_matches_real_sample():
    if not SAMPLE.exists():
        pytest.skip("shared sample not present")
    assert _read(SAMPLE)[0] == TWEETS_COLUMNS


def test_ids_and_screen_names(corpus):
    out, result, data = corpus
    uids = [u["userid"] for d in data.values() for u in d["users"]]
    assert len(uids) == len(set(uids))
    assert all(re.fullmatch(r"[1-9]\d{8,18}", x) and int(x) < 2**63 for x in uids)
    handles = [u["user_screen_name"] for d in data.values() for u in d["users"]]
    assert all(re.fullmatch(r"[A-Za-z0-9_]{4,15}", h) for h in handles)
    assert len({h.lower() for h in handles}) == len(handles)
    tids = [t["tweetid"] for d in data.values() for t in d["tweets"]]
    assert len(tids) == len(set(tids))
    assert all(re.fullmatch(r"[1-9]\d{8,18}", x) for x in tids)


def test_decoys_present(corpus):
    out, result, data = corpus
    handles = sorted(u["user_screen_name"].lower() for d in data.values() for u in d["users"])
    ext = [(a, b) for a in handles for b in handles if a != b and b.startswith(a)]
    assert ext, "no screen name extends another"
    uids = [u["userid"] for d in data.values() for u in d["users"]]
    pre = [(a, b) for a in uids for b in uids if a != b and b.startswith(a)]
    suf = [(a, b) for a in uids for b in uids if a != b and b.endswith(a)]
    assert pre or suf, "no user id shares a prefix/suffix with another"


def test_decoys_even_in_tiny_output(tmp_path):
    res = generate(tmp_path, 1, 5, 3, users_per_dataset=3, media=False)
    users = _dicts(res[0].dir / f"{res[0].name}_users_csv_unhashed.csv")
    hs = [u["user_screen_name"].lower() for u in users]
    assert any(a != b and b.startswith(a) for a in hs for b in hs)
    ids = [u["userid"] for u in users]
    assert any(a != b and (b.startswith(a) or b.endswith(a)) for a in ids for b in ids)


def test_authors_are_in_their_users_file_with_same_profile(corpus):
    out, result, data = corpus
    for name, d in data.items():
        users = {u["userid"]: u for u in d["users"]}
        for t in d["tweets"]:
            u = users.get(t["userid"])
            assert u is not None, (name, t["tweetid"])
            for col in USERS_COLUMNS:
                assert t[col] == u[col]


def test_value_formats(corpus):
    out, result, data = corpus
    for d in data.values():
        for u in d["users"]:
            assert re.fullmatch(r"\d{4}-\d\d-\d\d", u["account_creation_date"])
            assert re.fullmatch(r"\d+", u["follower_count"]) and re.fullmatch(r"\d+", u["following_count"])
        for t in d["tweets"]:
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", t["tweet_time"])
            assert t["tweet_time"][:10] >= t["account_creation_date"]
            assert t["latitude"] == t["longitude"] == "absent"
            assert t["is_retweet"] in ("true", "false")
            for c in ("quote_count", "reply_count", "like_count", "retweet_count"):
                assert re.fullmatch(r"\d+", t[c])
            assert t["poll_choices"] == ""
            assert re.fullmatch(r"|\[\]|\['[^']+'(, '[^']+')*\]", t["hashtags"]), t["hashtags"]
            assert re.fullmatch(r"|\[\]|\['http[^']+'(, 'http[^']+')*\]", t["urls"]), t["urls"]
            assert re.fullmatch(r"|\[\]|\[\d+(, \d+)*\]", t["user_mentions"]), t["user_mentions"]


def test_both_list_spellings_present(corpus):
    out, result, data = corpus
    tweets = [t for d in data.values() for t in d["tweets"]]
    for col in ("hashtags", "urls", "user_mentions"):
        c = Counter("nonempty" if t[col] not in ("", "[]") else t[col] for t in tweets)
        assert c["[]"] > 0 and c[""] > 0 and c["nonempty"] > 0, (col, c)
        assert c["[]"] > c[""]  # "[]" is the usual spelling


def test_text_variety(corpus):
    out, result, data = corpus
    texts = [t["tweet_text"] for d in data.values() for t in d["tweets"]]
    multiline = sum("\n" in x for x in texts) / len(texts)
    assert 0.12 < multiline < 0.25
    joined = "".join(texts)
    assert re.search(r"[\u0400-\u04FF]", joined)  # Cyrillic
    assert re.search(r"[\u0600-\u06FF]", joined)  # Arabic
    assert re.search(r"[\u4E00-\u9FFF]", joined)  # CJK
    assert re.search(r"[\U0001F300-\U0001FAFF]", joined)  # emoji
    assert any('"' in x for x in texts) and any("," in x for x in texts)
    langs = Counter(t["tweet_language"] for d in data.values() for t in d["tweets"])
    assert {"en", "ru", "ar", "und"} <= set(langs)
    # Profile fields are sometimes empty and sometimes not.
    users = [u for d in data.values() for u in d["users"]]
    for col in ("user_reported_location", "user_profile_description", "user_profile_url"):
        vals = [u[col] == "" for u in users]
        assert any(vals) and not all(vals), col


def test_heavy_tail(corpus):
    out, result, data = corpus
    for d in data.values():
        per = sorted(Counter(t["userid"] for t in d["tweets"]).values(), reverse=True)
        top = per[: len(d["users"]) // 5]
        assert sum(top) / len(d["tweets"]) > 0.5, per[:10]
        assert per[0] > 10 * sorted(per)[len(per) // 2]  # the top account dwarfs the median


def test_followers_both_sides_of_5000(corpus):
    out, result, data = corpus
    for d in data.values():
        f = [int(u["follower_count"]) for u in d["users"]]
        assert any(x >= 5000 for x in f) and any(x < 5000 for x in f)
        assert sum(x < 5000 for x in f) > len(f) / 2


def test_references(corpus):
    """Replies, retweets and mentions are consistent and some cross datasets."""
    out, result, data = corpus
    everyone = _all_users(data)
    handle_of = {uid: u["user_screen_name"] for uid, (_, u) in everyone.items()}
    cross = Counter()
    kinds = Counter()
    for name, d in data.items():
        top = {}
        for other, od in data.items():
            ranked = sorted(od["users"], key=lambda u: (-int(u["follower_count"]), u["userid"]))
            top[other] = {u["userid"] for u in ranked[: max(1, len(od["users"]) // 20)]}
        for t in d["tweets"]:
            mentions = re.findall(r"\d+", t["user_mentions"])
            if t["is_retweet"] == "true":
                kinds["rt"] += 1
                assert t["retweet_userid"] and t["retweet_tweetid"]
                assert mentions and mentions[0] == t["retweet_userid"]
                if t["retweet_userid"] in handle_of:
                    assert t["tweet_text"].startswith(f"RT @{handle_of[t['retweet_userid']]}: ")
            else:
                assert t["retweet_userid"] == t["retweet_tweetid"] == ""
            if t["in_reply_to_userid"]:
                kinds["reply"] += 1
                assert t["in_reply_to_tweetid"] and t["in_reply_to_userid"] in mentions
            refs = set(mentions) | {t["in_reply_to_userid"], t["retweet_userid"]} - {""}
            for uid in refs:
                assert uid != t["userid"]
                if uid in handle_of:
                    h = re.escape(handle_of[uid])
                    assert re.search(rf"@{h}(?![A-Za-z0-9_])", t["tweet_text"], re.I), (uid, t["tweet_text"])
                    owner = everyone[uid][0]
                    if owner != name:
                        cross[t.get("is_retweet")] += 1
                        # Cross-dataset references only go to prominent accounts.
                        assert uid in top[owner]
    assert kinds["rt"] > 0.1 * TWEETS and kinds["reply"] > 0.03 * TWEETS
    assert cross["true"] > 0 and cross["false"] > 0
    # Retweets/replies of tweets that exist in the same dataset are there too.
    tids = {t["tweetid"] for d in data.values() for t in d["tweets"]}
    assert any(t["retweet_tweetid"] in tids for d in data.values() for t in d["tweets"])
    # Mentions with a different case than the screen name exist (case-insensitive matching).
    assert any(re.search(rf"@{re.escape(h.lower())}(?![A-Za-z0-9_])", t["tweet_text"])
               and h != h.lower() and f"@{h}" not in t["tweet_text"]
               for d in data.values() for t in d["tweets"]
               for h in [handle_of.get(m) for m in re.findall(r"\d+", t["user_mentions"])] if h)


def _png_ok(b: bytes) -> bool:
    if not b.startswith(b"\x89PNG\r\n\x1a\n"):
        return False
    i = 8
    kinds = []
    while i < len(b):
        (n,) = struct.unpack(">I", b[i:i + 4])
        kind, data, crc = b[i + 4:i + 8], b[i + 8:i + 8 + n], b[i + 8 + n:i + 12 + n]
        if struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF) != crc:
            return False
        if kind == b"IDAT":
            zlib.decompress(data)
        kinds.append(kind)
        i += 12 + n
    return kinds[0] == b"IHDR" and kinds[-1] == b"IEND"


def _jpeg_ok(b: bytes) -> bool:
    if not (b.startswith(b"\xff\xd8") and b.endswith(b"\xff\xd9")):
        return False
    i, seen = 2, []
    while b[i] == 0xFF and b[i + 1] != 0xDA:
        marker = b[i + 1]
        (n,) = struct.unpack(">H", b[i + 2:i + 4])
        seen.append(marker)
        i += 2 + n
    return {0xDB, 0xC0, 0xC4} <= set(seen) and b[i + 1] == 0xDA


def test_media_members(corpus):
    out, result, data = corpus
    total = 0
    for ds in result:
        authored = {(t["userid"], t["tweetid"]) for t in data[ds.name]["tweets"]}
        for p in ds.files:
            if p.suffix != ".zip":
                continue
            assert re.fullmatch(rf"{ds.name}_tweet_media_unhashed_\d+\.zip", p.name)
            with zipfile.ZipFile(p) as z:
                assert z.testzip() is None
                for info in z.infolist():
                    m = re.fullmatch(r"(\d+)/images/(\d+)-(\d+)\.(jpg|png)", info.filename)
                    assert m, info.filename
                    assert (m.group(1), m.group(2)) in authored
                    b = z.read(info)
                    assert (_jpeg_ok(b) if m.group(4) == "jpg" else _png_ok(b)), info.filename
                    total += 1
    assert total > 0


def test_no_media(tmp_path):
    res = generate(tmp_path, 2, 400, 5, media=False)
    assert not any(p.suffix == ".zip" for d in res for p in d.files)
    assert not list(tmp_path.rglob("*.zip"))


def test_dataset_names_and_validation(tmp_path):
    assert dataset_names(3) == ["synth_a", "synth_b", "synth_c"]
    assert dataset_names(28)[26:] == ["synth_aa", "synth_ab"]
    res = generate(tmp_path, ["ira", "china_082019_3"], 100, 1, media=False)
    assert [d.name for d in res] == ["ira", "china_082019_3"]
    assert (tmp_path / "ira" / "ira_users_csv_unhashed.csv").exists()
    with pytest.raises(ValueError):
        generate(tmp_path / "x", 0, 10, 1)
    with pytest.raises(ValueError):
        generate(tmp_path / "x", 3, 2, 1)
    with pytest.raises(ValueError):
        generate(tmp_path / "x", ["Bad Name"], 10, 1)
    with pytest.raises(ValueError):
        generate(tmp_path / "x", ["a", "a"], 10, 1)


def test_memory_is_bounded(tmp_path):
    """Peak memory does not grow with the number of tweets (streaming)."""
    def peak(n, d):
        tracemalloc.start()
        generate(tmp_path / d, 1, n, 1, users_per_dataset=50, tweets_per_file=n // 4)
        p = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return p
    small, big = peak(1000, "s"), peak(6000, "b")
    assert big < small * 1.5 + 512 * 1024, (small, big)


# ---------------------------------------------------------------- CLI

def test_cli_writes_datasets(tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(synth_cmd, [str(out), "--datasets", "2", "--tweets", "300", "--seed", "4",
                                       "--tweets-per-file", "100"])
    assert r.exit_code == 0, r.output
    assert "synth_a" in r.output and "synth_b" in r.output and "300 tweets" in r.output
    assert (out / "synth_a" / "synth_a_users_csv_unhashed.csv").exists()
    assert list((out / "synth_b").glob("synth_b_tweets_csv_unhashed_*.csv"))


def test_cli_names_and_no_media(tmp_path):
    out = tmp_path / "out"
    out.mkdir()  # an existing empty directory is fine
    r = CliRunner().invoke(synth_cmd, [str(out), "--datasets", "ira,iranian", "--tweets", "50", "--no-media"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["ira", "iranian"]
    assert not list(out.rglob("*.zip"))


@pytest.mark.parametrize("args, message", [
    (["--datasets", "0", "--tweets", "10"], "positive"),
    (["--datasets", "-2", "--tweets", "10"], "positive"),
    (["--datasets", "2", "--tweets", "0"], "positive"),
    (["--datasets", "3", "--tweets", "2"], "at least one tweet per dataset"),
    (["--datasets", "Bad Name", "--tweets", "10"], "invalid dataset name"),
    (["--datasets", "a,a", "--tweets", "10"], "unique"),
    (["--datasets", "2", "--tweets", "10", "--tweets-per-file", "0"], "positive"),
    (["--datasets", "2"], "--tweets"),
])
def test_cli_rejects_bad_input(tmp_path, args, message):
    out = tmp_path / "out"
    r = CliRunner().invoke(synth_cmd, [str(out), *args])
    assert r.exit_code != 0
    assert message in r.output
    assert not out.exists()


def test_cli_refuses_non_empty_out(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    r = CliRunner().invoke(synth_cmd, [str(out), "--datasets", "1", "--tweets", "10"])
    assert r.exit_code != 0 and "not empty" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    f = tmp_path / "file"
    f.write_text("x")
    r = CliRunner().invoke(synth_cmd, [str(f), "--datasets", "1", "--tweets", "10"])
    assert r.exit_code != 0 and "not a directory" in r.output
