"""The hashing rule and the standing decisions, pinned: known answers, a property test of the hashed
variant's derivation, and a stateful test of imports, corrections and revocations against a reference."""

from __future__ import annotations

import itertools
import shutil
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from workers.engine.api import Engine
from workers.engine.hashing import pseudonym

from . import reference
from .conftest import TWEET_COLS, USER_COLS, tweet_row, user_row, write_csv

KEY = b"rules-test-key"


# --- known answers (checked against `openssl dgst -sha256 -hmac known-answer-key -binary | base64`) ---

def test_pseudonym_known_answers():
    assert pseudonym(b"known-answer-key", "1536791610", 0) == "zwThzwJLgtikn7ARdRI1A2VC9v30a+WaNMkQFL7NSr4="
    assert pseudonym(b"known-answer-key", "1536791610", 3) == "wv5lBwezE9jy78AmELPKaPhlS6OdjVLtLeWEBs5CjhM="


# --- the hashed variant's derivation, for any master ---------------------------------------------

NAMES = ["ab", "AbC", "abc", "x_1", "Zed", "q"]
FOLLOWERS = [0, 10, 4999, 5000, 5001, 90000]


@st.composite
def masters(draw):
    n = draw(st.integers(2, 5))
    ids = draw(st.lists(st.sampled_from(["11", "111", "12", "4999", "5000", "7"]), min_size=n, max_size=n, unique=True))
    sns = draw(st.lists(st.sampled_from(NAMES), min_size=n, max_size=n, unique_by=str.lower))
    accounts = [{"userid": i, "user_display_name": f"D {i}", "user_screen_name": s,
                 "follower_count": str(draw(st.sampled_from(FOLLOWERS)))} for i, s in zip(ids, sns)]
    others = ids + ["999"]  # 999: referred to, never in the users file
    tweets = []
    for t in range(draw(st.integers(1, 8))):
        author = draw(st.sampled_from(accounts))
        ment = draw(st.lists(st.sampled_from(others), max_size=3))
        quoted = draw(st.booleans())
        words = draw(st.lists(st.sampled_from(
            [f"@{s}" for s in NAMES] + [f"@{s.upper()}" for s in NAMES] + ["@abcd", "x@ab", "RT", "hi", "@", "@ab_"]),
            max_size=5))
        tweets.append(tweet_row(
            str(100 + t), author, " ".join(words) + "\nend",
            in_reply_to_userid=draw(st.sampled_from(["", *others])),
            retweet_userid=draw(st.sampled_from(["", *others])),
            user_mentions="[" + ", ".join(f"'{m}'" if quoted else m for m in ment) + "]"))
    return accounts, tweets


def write_master(d: Path, name: str, accounts, tweets, media: bool = False) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    write_csv(d / f"{name}_users_csv_unhashed.csv", USER_COLS, [user_row(a) for a in accounts])
    write_csv(d / f"{name}_tweets_csv_unhashed.csv", TWEET_COLS, tweets)
    if media:
        with zipfile.ZipFile(d / f"{name}_tweet_media_unhashed_1.zip", "w") as z:
            for a in accounts:
                zi = zipfile.ZipInfo(f"{a['userid']}/images/1-1.jpg", (2020, 1, 1, 0, 0, 0))
                z.writestr(zi, f"image of {a['userid']}".encode())
    return d


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(masters())
def test_hashed_variant_derivation_matches_the_reference(master):
    """Author fields, reference fields, mention lists and @handles of every hashed account (followers
    below 5,000: 4,999 is hashed, 5,000 is not) take its pseudonym; nothing else changes."""
    accounts, tweets = master
    with tempfile.TemporaryDirectory() as tmp:
        src = write_master(Path(tmp) / "src", "ds", accounts, tweets, media=True)
        engine = Engine(Path(tmp) / "data", KEY, "k")
        engine.import_dataset(src, "ds")
        assert reference.published(engine, "ds") == reference.derive(src, "ds", KEY, {}, lambda uid: 0)


def test_boundary_4999_hashed_5000_not(tmp_path):
    a = {"userid": "1", "user_display_name": "A", "user_screen_name": "below", "follower_count": "4999"}
    b = {"userid": "2", "user_display_name": "B", "user_screen_name": "at", "follower_count": "5000"}
    src = write_master(tmp_path / "src", "ds", [a, b], [
        tweet_row("9", a, "hello @AT and @Below", user_mentions="[1, 2]", in_reply_to_userid="2",
                  retweet_userid="1")])
    engine = Engine(tmp_path / "data", KEY, "k")
    engine.import_dataset(src, "ds")
    text = engine.file_path("ds", 1, "hashed", "ds_tweets_csv_hashed.csv").read_text()
    p = pseudonym(KEY, "1", 0)
    assert f'"{p}","{p}","{p}"' in text and f"hello @AT and @{p}" in text and f"[{p}, 2]" in text
    assert '"Twitter Web Client","2",' in text  # the reply to the account at 5,000 stays in clear
    assert "below" not in text.lower() and '"1"' not in text


# --- standing decisions over time: a stateful test against the reference ------------------------

ACCOUNTS = [
    {"userid": "1000", "user_display_name": "One", "user_screen_name": "Alpha_One", "follower_count": "100"},
    {"userid": "2000", "user_display_name": "Two", "user_screen_name": "Beta_Two", "follower_count": "4999"},
    {"userid": "3000", "user_display_name": "Three", "user_screen_name": "Gamma_3", "follower_count": "5000"},
    {"userid": "4000", "user_display_name": "Four", "user_screen_name": "delta", "follower_count": "9000"},
    {"userid": "5000", "user_display_name": "Five", "user_screen_name": "Eps", "follower_count": "10"},
]
BY_ID = {a["userid"]: a for a in ACCOUNTS}


def _tweets(authors: list[str], refs: list[str], base: int) -> list[dict]:
    out = []
    for n, (a, r) in enumerate(itertools.product(authors, refs)):
        rsn = BY_ID[r]["user_screen_name"]
        out.append(tweet_row(str(base + n), BY_ID[a], f"RT @{rsn}: hi @{rsn.lower()}x and @{rsn.upper()}",
                             retweet_userid=r if n % 2 else "", in_reply_to_userid="" if n % 2 else r,
                             user_mentions=f"[{r}, {a}]" if n % 3 else f"['{r}']"))
    return out


DATASETS = {  # name -> (authors, referred to only)
    "d1": (["1000", "2000", "3000"], ["4000", "5000"]),
    "d2": (["4000", "5000"], ["1000", "3000"]),
    "d3": (["2000"], ["1000", "3000", "4000"]),
    "d4": (["3000"], ["4000"]),  # holds none of the hashed accounts: a decision about them waits for another
}


@pytest.fixture(scope="module")
def masters_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("masters")
    for n, (name, (authors, refs)) in enumerate(DATASETS.items()):
        write_master(root / name, name, [BY_ID[a] for a in authors],
                     _tweets(authors, refs + authors, 1000 * (n + 1)), media=True)
    return root


class Ledger(RuleBasedStateMachine):
    """Import, correct (remove / rehash), revoke and re-run, in any order; after every step each current
    release equals the reference applying the decisions it has taken in to its master."""

    masters: Path

    @initialize()
    def start(self):
        self.tmp = tempfile.mkdtemp()
        self.engine = Engine(Path(self.tmp) / "data", KEY, "k")
        self.standing: dict[str, tuple] = {}  # the ledger: uid -> (remedy, epoch, names)
        self.state: dict[str, int] = {}  # the engine's account epochs, as the rules say they move
        self.applied: dict[str, dict] = {}  # dataset -> uid -> (remedy, epoch, names) it has taken in
        self.hash_epochs: dict[str, dict] = {}  # dataset -> epochs of hashed accounts at its import
        self.batches: list[tuple[str, list]] = []

    def teardown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(name=st.sampled_from(sorted(DATASETS)))
    def import_dataset(self, name):
        if name in self.applied:
            return
        decisions = [{"user_id": u, "remedy": r, "epoch": e, "screen_names": sorted(n)}
                     for u, (r, e, n) in self.standing.items()]
        self.engine.import_dataset(self.masters / name, name, decisions=decisions)
        self.applied[name] = dict(self.standing)
        self.hash_epochs[name] = dict(self.state)
        # A decision moves the account's state only where a release holds it (by id or @handle): one
        # about an account no release holds has published no pseudonym yet.
        held = set(DATASETS[name][0]) | set(DATASETS[name][1])
        for u, (_, e, _) in self.standing.items():
            if u in held:
                self.state[u] = e

    @rule(uid=st.sampled_from(sorted(BY_ID)), remedy=st.sampled_from(["remove", "rehash"]))
    def correct(self, uid, remedy):
        batch = f"b{len(self.batches)}"
        names = {BY_ID[uid]["user_screen_name"].lower()}
        res = self.engine.apply(batch, [(uid, remedy)], screen_names={uid: BY_ID[uid]["user_screen_name"]})
        self.batches.append((batch, [(uid, remedy)]))
        if uid not in {u for u, _ in res.noop}:
            epoch = self.state.get(uid, 0) + 1
            self.state[uid] = epoch
            for ds, taken in self.applied.items():
                before = taken.get(uid)
                kept = "remove" if before and before[0] == "remove" else remedy  # removed rows stay removed
                taken[uid] = (kept, epoch, names)
        epoch = self.state.get(uid, 1)
        assert self.engine.standing_epoch(uid) == epoch
        self.standing[uid] = (remedy, epoch, names)

    @rule(uid=st.sampled_from(sorted(BY_ID)))
    def revoke(self, uid):
        self.standing.pop(uid, None)  # future imports only: nothing published changes

    @rule()
    def rerun(self):
        if self.batches:
            batch, items = self.batches[-1]
            before = {d.name: d.current_version for d in self.engine.list_datasets()}
            assert self.engine.apply(batch, items).already_applied
            assert {d.name: d.current_version for d in self.engine.list_datasets()} == before

    @invariant()
    def releases_equal_the_reference(self):
        for name, taken in self.applied.items():
            want = reference.derive(self.masters / name, name, KEY, taken,
                                    lambda u, _e=self.hash_epochs[name]: _e.get(u, 0))
            assert reference.published(self.engine, name) == want, name


@pytest.mark.slow
def test_standing_decisions_state_machine(masters_dir):
    Ledger.masters = masters_dir
    Ledger.TestCase.settings = settings(max_examples=25, stateful_step_count=8, deadline=None)
    Ledger.TestCase().runTest()
