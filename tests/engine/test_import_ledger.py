"""Import with a large ledger: per-decision work only for accounts the dataset holds, and earlier pseudonyms
found even so when the input holds them."""

from __future__ import annotations

import random

from workers.engine.api import Engine
from workers.engine.hashing import pseudonym

from . import reference
from .conftest import TWEET_COLS, USER_COLS, acct, make_beta, make_gamma, tweet_row, user_row, write_csv

KEY = b"import-ledger-test-key"


def _ledger(n: int, seed: int = 3) -> list[dict]:
    """The target's decision (rehash at epoch 3) among n decisions about accounts no dataset here holds."""
    rng = random.Random(seed)
    out = [{"user_id": "1000", "remedy": "rehash", "epoch": 3, "screen_names": ["target_x"]}]
    while len(out) < n:
        uid = str(rng.randrange(10**17, 10**18))
        out.append({"user_id": uid, "remedy": rng.choice(["remove", "rehash"]), "epoch": rng.randint(1, 3),
                    "screen_names": [f"acct_{uid[-9:]}"]})
    return out


def test_a_decision_moves_the_account_state_only_where_a_release_holds_it(tmp_path):
    eng = Engine(tmp_path / "data", KEY, "k")
    ledger = _ledger(300)
    other = ledger[1]["user_id"]
    eng.import_dataset(make_beta(tmp_path / "beta"), "beta", decisions=ledger)  # holds neither
    assert eng.standing_epoch("1000") == 1 and eng.standing_epoch(other) == 1
    eng.import_dataset(make_gamma(tmp_path / "gamma"), "gamma", decisions=ledger)  # refers to the target
    assert eng.standing_epoch("1000") == 3
    assert eng.standing_epoch(other) == 1
    files = reference.published(eng, "gamma")
    new = pseudonym(KEY, "1000", 3).encode()
    assert all(new in files[f] for f in ("gamma_tweets_csv_unhashed.csv", "gamma_tweets_csv_hashed.csv"))


def test_earlier_pseudonyms_in_the_input_are_replaced_with_a_large_ledger(tmp_path):
    """The input holds the target's earlier pseudonyms (as a re-derived release does): they are found though
    the ledger's earlier pseudonyms are only computed once such a token is seen, in a later block too."""
    src = tmp_path / "delta"
    src.mkdir()
    old0, old2 = pseudonym(KEY, "1000", 0), pseudonym(KEY, "1000", 2)
    q = acct("555")
    write_csv(src / "delta_users_csv_unhashed.csv", USER_COLS, [user_row(q)])
    rows = [tweet_row(str(300 + i), q, f"filler {i} " + "x" * 400) for i in range(40)]
    rows += [tweet_row("400", q, f"quoting {old0} here", user_mentions=f"[{old2}]", in_reply_to_userid=old0)]
    write_csv(src / "delta_tweets_csv_unhashed.csv", TWEET_COLS, rows)
    from workers.engine import importer

    chunk, importer.IMPORT_CHUNK = importer.IMPORT_CHUNK, 4096  # the pseudonyms come in a later block
    try:
        eng = Engine(tmp_path / "data", KEY, "k")
        eng.import_dataset(src, "delta", decisions=_ledger(200))
    finally:
        importer.IMPORT_CHUNK = chunk
    new = pseudonym(KEY, "1000", 3)
    for name, data in reference.published(eng, "delta").items():
        assert old0.encode() not in data and old2.encode() not in data, name
        if "tweets" in name:
            assert data.count(new.encode()) == 3, name
    assert eng.standing_epoch("1000") == 3
