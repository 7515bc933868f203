"""Fixtures of the engine tests: a tiny generator of archive-style datasets with decoys."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from workers.engine import faults
from workers.engine.api import Engine
from workers.engine.csvio import encode_record

KEY = b"test-key-for-engine-tests"
KEY_ID = "hmac-sha256:testkey"

USER_COLS = ["userid", "user_display_name", "user_screen_name", "user_reported_location",
             "user_profile_description", "user_profile_url", "follower_count", "following_count",
             "account_creation_date", "account_language"]
TWEET_COLS = ["tweetid", "userid", "user_display_name", "user_screen_name", "user_reported_location",
              "user_profile_description", "user_profile_url", "follower_count", "following_count",
              "account_creation_date", "account_language", "tweet_language", "tweet_text", "tweet_time",
              "tweet_client_name", "in_reply_to_userid", "in_reply_to_tweetid", "quoted_tweet_tweetid",
              "is_retweet", "retweet_userid", "retweet_tweetid", "latitude", "longitude", "quote_count",
              "reply_count", "like_count", "retweet_count", "hashtags", "urls", "user_mentions", "poll_choices"]
# 2018 order: in_reply_to_tweetid before in_reply_to_userid.
TWEET_COLS_2018 = [c for c in TWEET_COLS if c != "in_reply_to_userid"]
TWEET_COLS_2018.insert(TWEET_COLS_2018.index("in_reply_to_tweetid") + 1, "in_reply_to_userid")

# The account the tests correct, and decoys that must come out untouched.
TARGET = {"userid": "1000", "user_screen_name": "Target_X", "follower_count": "100"}
ACCOUNTS = [
    dict(TARGET, user_display_name="Target Person"),
    {"userid": "10000", "user_display_name": "Prefix decoy", "user_screen_name": "Target_Xy", "follower_count": "50"},
    {"userid": "21000", "user_display_name": "Suffix decoy", "user_screen_name": "Target_", "follower_count": "60"},
    {"userid": "777", "user_display_name": "Big News", "user_screen_name": "BigNews", "follower_count": "9000"},
    {"userid": "555", "user_display_name": "Quiet", "user_screen_name": "quiet_one", "follower_count": "10"},
]


def user_row(a: dict) -> dict:
    return {"userid": a["userid"], "user_display_name": a["user_display_name"],
            "user_screen_name": a["user_screen_name"], "user_reported_location": "Somewhere, \"Far\"",
            "user_profile_description": "line one\nline two, with comma", "user_profile_url": "https://t.co/x",
            "follower_count": a["follower_count"], "following_count": "5", "account_creation_date": "2015-01-02",
            "account_language": "en"}


def tweet_row(tid: str, author: dict, text: str, **kw) -> dict:
    r = {c: "" for c in TWEET_COLS}
    r.update(user_row(author))
    r.update({"tweetid": tid, "tweet_language": "en", "tweet_text": text, "tweet_time": "2017-08-06 08:15",
              "tweet_client_name": "Twitter Web Client", "is_retweet": "false", "latitude": "absent",
              "longitude": "absent", "quote_count": "0", "reply_count": "0", "like_count": "0",
              "retweet_count": "0", "hashtags": "[]", "urls": "[]", "user_mentions": "[]"})
    r.update(kw)
    return r


def write_csv(path: Path, cols: list[str], rows: list[dict]) -> None:
    with open(path, "wb") as f:
        f.write(encode_record(cols))
        for r in rows:
            f.write(encode_record([r[c] for c in cols]))


def write_zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


def acct(uid: str) -> dict:
    return next(a for a in ACCOUNTS if a["userid"] == uid)


def alpha_tweets() -> tuple[list[dict], list[dict]]:
    """Two parts: part 1 holds the target's rows, references and decoys; part 2 holds none of them."""
    T, P, S, B, Q = (acct(u) for u in ("1000", "10000", "21000", "777", "555"))
    part1 = [
        tweet_row("1", T, "my own tweet\nwith two lines and \"quotes\""),
        tweet_row("2", P, "prefix decoy talks about @Target_Xy and @Target_ only"),
        tweet_row("3", Q, "hello @target_x, how are you", user_mentions="[1000, 10000]"),
        tweet_row("4", B, "RT @TARGET_X: big news", is_retweet="true", retweet_userid="1000", retweet_tweetid="1"),
        tweet_row("5", S, "reply", in_reply_to_userid="1000", in_reply_to_tweetid="1"),
        tweet_row("6", Q, "quoted spelling", user_mentions="['1000', '21000']"),
        tweet_row("7", T, "second by target, mentions @BigNews", user_mentions="[777]"),
        tweet_row("8", Q, "ids 110000 and 10001 and @Target_X_ and x@Target_Xz", user_mentions="[10000, 21000]"),
        tweet_row("9", B, "unicode ✓ سورية 🙂, no reference", hashtags="['a', 'b']"),
    ]
    part2 = [
        tweet_row("20", Q, "nothing to see"),
        tweet_row("21", B, "also nothing, \"quoted\"\nmulti-line", user_mentions="[555]"),
        tweet_row("22", P, "decoy @Target_Xy again"),
    ]
    return part1, part2


def make_alpha(src: Path, name: str = "alpha") -> Path:
    """Dataset with the target, decoys, two tweet parts and a media zip."""
    src.mkdir(parents=True, exist_ok=True)
    write_csv(src / f"{name}_users_csv_unhashed.csv", USER_COLS, [user_row(a) for a in ACCOUNTS])
    p1, p2 = alpha_tweets()
    write_csv(src / f"{name}_tweets_csv_unhashed_1.csv", TWEET_COLS, p1)
    write_csv(src / f"{name}_tweets_csv_unhashed_2.csv", TWEET_COLS, p2)
    write_zip(src / f"{name}_tweet_media_unhashed_1.zip", {
        "1000/images/1-1.jpg": b"target image",
        "10000/images/2-1.jpg": b"decoy image",
        "777/images/4-1.png": b"big image",
    })
    return src


def make_beta(src: Path, name: str = "beta") -> Path:
    """Dataset that never mentions the target (2018 column order)."""
    src.mkdir(parents=True, exist_ok=True)
    accts = [acct("555"), acct("777")]
    write_csv(src / f"{name}_users_csv_unhashed.csv", USER_COLS, [user_row(a) for a in accts])
    rows = [tweet_row("100", acct("555"), "beta says hi to @BigNews", user_mentions="[777]"),
            tweet_row("101", acct("777"), "beta big", urls="[http://a.example/x]")]
    write_csv(src / f"{name}_tweets_csv_unhashed.csv", TWEET_COLS_2018, rows)
    return src


def make_gamma(src: Path, name: str = "gamma") -> Path:
    """Dataset where the target is not an author, only referred to by id and handle."""
    src.mkdir(parents=True, exist_ok=True)
    write_csv(src / f"{name}_users_csv_unhashed.csv", USER_COLS, [user_row(acct("555"))])
    rows = [tweet_row("200", acct("555"), "cc @Target_X", user_mentions="[1000]"),
            tweet_row("201", acct("555"), "unrelated")]
    write_csv(src / f"{name}_tweets_csv_unhashed.csv", TWEET_COLS, rows)
    return src


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])
def store_kind(request) -> str:
    """Every engine test runs on the local store and on the S3 store (moto server)."""
    return request.param


@pytest.fixture
def store_opener(request, store_kind, tmp_path):
    """A function data_dir -> Store of this test's kind (S3: one fresh bucket per test)."""
    if store_kind == "local":
        return lambda data_dir: None  # Engine's default: the local store in data_dir
    from workers.engine.s3store import S3Store

    s3 = request.getfixturevalue("moto_s3")
    url = s3.new_bucket()
    opener = lambda data_dir: S3Store(Path(data_dir), url, s3.endpoint)  # noqa: E731
    opener.url, opener.endpoint = url, s3.endpoint
    return opener


def reopen(engine: Engine, data_dir: Path | None = None) -> Engine:
    """A fresh Engine on the same store, as a restarted worker (or another machine, given data_dir) sees it."""
    store = engine.store
    if getattr(store, "remote", False):
        from workers.engine.s3store import S3Store

        d = Path(data_dir or engine.data_dir)
        return Engine(d, KEY, KEY_ID, store=S3Store(d, store.url, client=store.client))
    return Engine(data_dir or engine.data_dir, KEY, KEY_ID)


@pytest.fixture
def engine(tmp_path, store_opener) -> Engine:
    return Engine(tmp_path / "data", KEY, KEY_ID, store=store_opener(tmp_path / "data"))


@pytest.fixture
def world(tmp_path, engine) -> Engine:
    """An engine with alpha, beta and gamma imported."""
    engine.import_dataset(make_alpha(tmp_path / "src_alpha"), "alpha")
    engine.import_dataset(make_beta(tmp_path / "src_beta"), "beta")
    engine.import_dataset(make_gamma(tmp_path / "src_gamma"), "gamma")
    return engine


@pytest.fixture(autouse=True)
def _no_fault_hook():
    yield
    faults.test_hook = None
