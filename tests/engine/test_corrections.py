"""Remove and re-hash over generated datasets with decoys: both variants, references, media, byte identity."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest

from workers.engine.api import BadCorrection, PublishConflict
from workers.engine.hashing import pseudonym

from .conftest import KEY

P0 = pseudonym(KEY, "1000", 0)
P1 = pseudonym(KEY, "1000", 1)
DECOY_IDS = {"10000", "21000"}


def files_of(engine, name, version=None):
    return {f["path"]: f for f in engine.manifest(name, version)["files"]}


def read(engine, name, path, version=None):
    m = engine.manifest(name, version)
    f = files_of(engine, name, version)[path]
    return engine.file_path(name, m["version"], f["variant"], path).read_bytes()


def rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode(), newline="")))


def raw_records(data: bytes) -> list[bytes]:
    from workers.engine.csvio import split_records

    return split_records(data)


def assert_no_trace(data: bytes):
    text = data.decode()
    for r in rows(data):
        for col in ("userid", "in_reply_to_userid", "retweet_userid"):
            assert r.get(col) not in ("1000", P0), (col, r)
        if "user_mentions" in r:
            assert "1000" not in [x.strip(" '") for x in r["user_mentions"].strip("[]").split(",")]
        assert r["user_screen_name"].lower() != "target_x"
    assert P0 not in text
    import re

    assert not re.search(r"@target_x(?![A-Za-z0-9_])", text, re.I)


@pytest.mark.parametrize("action", ["rehash", "remove"])
def test_correction_semantics(world, action):
    before = {n: files_of(world, n) for n in ("alpha", "beta", "gamma")}
    old1 = {v: read(world, "alpha", f"alpha_tweets_csv_{v}_1.csv") for v in ("hashed", "unhashed")}
    res = world.apply("b1", [("1000", action)])
    assert res.releases == {"alpha": 2, "gamma": 2} and not res.already_applied
    # beta does not mention the account: no new release.
    assert world.get_dataset("beta").current_version == 1
    after = files_of(world, "alpha")
    for variant in ("hashed", "unhashed"):
        # part 2 holds none of the account's rows: the very same blob is shared.
        p2 = f"alpha_tweets_csv_{variant}_2.csv"
        assert after[p2]["sha256"] == before["alpha"][p2]["sha256"]
        p1 = f"alpha_tweets_csv_{variant}_1.csv"
        new = read(world, "alpha", p1)
        assert_no_trace(new)
        assert_no_trace(read(world, "alpha", f"alpha_users_csv_{variant}.csv"))
        assert_no_trace(read(world, "gamma", f"gamma_tweets_csv_{variant}.csv"))
        by_id = {r["tweetid"]: r for r in rows(new)}
        # References became the new pseudonym, in both variants.
        assert by_id["5"]["in_reply_to_userid"] == P1
        assert by_id["4"]["retweet_userid"] == P1
        assert by_id["4"]["tweet_text"] == f"RT @{P1}: big news"
        assert by_id["3"]["tweet_text"] == f"hello @{P1}, how are you"
        assert by_id["3"]["user_mentions"].startswith(f"[{P1}, ")
        assert by_id["6"]["user_mentions"].startswith(f"['{P1}', ")  # quoted spelling kept
        # Decoys untouched: records 2, 8, 9 are byte-identical and in order.
        old_recs = {csv_row_id(r): r for r in raw_records(old1[variant])}
        new_recs = raw_records(new)
        for tid in ("2", "8", "9"):
            assert old_recs[tid] in new_recs
        # The decoys' own handles: in clear in the master, their pseudonyms in the public variant.
        decoy = "@Target_Xy" if variant == "unhashed" else "@" + pseudonym(KEY, "10000", 0)
        assert decoy in by_id["2"]["tweet_text"] and "@Target_X_" in by_id["8"]["tweet_text"]
        ids = [r["tweetid"] for r in rows(new)]
        if action == "remove":
            assert ids == ["2", "3", "4", "5", "6", "8", "9"]
        else:
            assert ids == [str(i) for i in range(1, 10)]
            assert by_id["1"]["userid"] == by_id["1"]["user_screen_name"] == by_id["1"]["user_display_name"] == P1
            assert by_id["1"]["user_profile_description"] == by_id["1"]["user_reported_location"] == ""
            assert by_id["7"]["user_mentions"] == "[777]" or variant == "hashed"
        z = zipfile.ZipFile(io.BytesIO(read(world, "alpha", f"alpha_tweet_media_{variant}_1.zip")))
        names = z.namelist()
        assert not any(n.startswith(("1000/", P0)) for n in names)
        assert (f"{P1}/images/1-1.jpg" in names) == (action == "rehash")
        if action == "rehash":
            assert z.read(f"{P1}/images/1-1.jpg") == b"target image"
    s = world.get_dataset("alpha").versions[-1].summary
    if action == "remove":
        assert s["accounts_removed"] == 1 and s["rows_removed"] == 3 and s["rows_rewritten"] == 4
    else:
        assert s["accounts_rehashed"] == 1 and s["rows_removed"] == 0 and s["rows_rewritten"] == 7
    assert s["files_changed"] == 6
    assert world.get_dataset("alpha").versions[0].status == "withdrawn"
    assert res.rows_removed == s["rows_removed"]
    assert all(world.verify(n).ok for n in ("alpha", "beta", "gamma"))


def csv_row_id(raw: bytes) -> str:
    return raw.split(b",", 1)[0].strip(b'"').decode()


def test_idempotent_batch_and_noop_remove(world):
    r1 = world.apply("b1", [("1000", "remove")])
    r2 = world.apply("b1", [("1000", "remove")])
    assert r2.already_applied and r2.releases == r1.releases
    assert world.get_dataset("alpha").current_version == 2
    r3 = world.apply("b2", [("1000", "remove")])
    assert r3.releases == {} and r3.noop == [("1000", "already removed")]
    assert world.get_dataset("alpha").current_version == 2
    assert world.batch_result("b1").releases == {"alpha": 2, "gamma": 2}
    assert world.batch_result("nope") is None


def test_rehash_twice_then_remove(world):
    world.apply("b1", [("1000", "rehash")])
    world.apply("b2", [("1000", "rehash")])
    p2 = pseudonym(KEY, "1000", 2)
    data = read(world, "alpha", "alpha_tweets_csv_unhashed_1.csv")
    assert p2 in data.decode() and P1 not in data.decode()
    world.apply("b3", [("1000", "remove")])
    p3 = pseudonym(KEY, "1000", 3)
    data = read(world, "alpha", "alpha_tweets_csv_hashed_1.csv").decode()
    assert p3 in data and p2 not in data
    assert [r["tweetid"] for r in rows(data.encode())] == ["2", "3", "4", "5", "6", "8", "9"]


def test_plan_matches_apply_and_writes_nothing(world):
    plan = world.plan([("1000", "remove"), ("nobody", "rehash")])
    assert plan.noop and plan.noop[0][0] == "nobody"
    assert plan.datasets["alpha"]["unhashed"]["rows_removed"] == 3
    assert plan.datasets["alpha"]["hashed"]["rows_removed"] == 3
    assert plan.datasets["alpha"]["media_members"] == 1
    assert "beta" not in plan.datasets
    assert world.get_dataset("alpha").current_version == 1
    res = world.apply("b1", [("1000", "remove"), ("nobody", "rehash")])
    assert res.rows_removed == 3


def test_bad_items_and_fence(world):
    for items in ([], [("1000", "delete")], [("", "remove")], [("1000", "remove"), ("1000", "rehash")]):
        with pytest.raises(BadCorrection):
            world.apply("bx", items)
    world.apply("b1", [("555", "rehash")], fence=5)
    with pytest.raises(PublishConflict):
        world.apply("b2", [("1000", "rehash")], fence=4)
    assert world.apply("b3", [("1000", "rehash")], fence=5).releases


def test_footprint_and_reindex(world):
    fp = {e.dataset: e for e in world.footprint("1000")}
    assert set(fp) == {"alpha", "gamma"}
    a = fp["alpha"]
    assert a.authored_tweets == 2 and a.in_users_file and a.hashed_publicly
    assert "alpha_tweets_csv_unhashed_1.csv" in a.files and "alpha_tweets_csv_hashed_1.csv" in a.files
    assert "alpha_tweets_csv_unhashed_2.csv" not in a.files
    assert not fp["gamma"].in_users_file and fp["gamma"].referring_rows == 1  # id and @handle, one row
    # Rows 3 (@handle and id), 4 (RT @HANDLE and retweet id), 5 (reply id), 6 (quoted id); decoys excluded.
    assert a.referring_rows == 4
    assert [e.dataset for e in world.footprint("777")] == ["alpha", "beta"]
    assert not {e.dataset: e for e in world.footprint("777")}["alpha"].hashed_publicly
    assert world.footprint("10000")[0].authored_tweets == 2  # decoy counted apart from the target
    world.apply("b1", [("1000", "rehash")])
    incremental = world.footprint("1000")
    world.reindex()
    assert world.footprint("1000") == incremental
    assert world.footprint("777") == [e for e in world.footprint("777")]


def test_footprint_lookups_search_indexes_and_never_scan_the_corpus(world):
    """A lookup stays fast however large the corpus grows (timed in bench/correction.py): every statement
    it runs searches an index; the only table it reads whole is `indexed`, one row per dataset."""
    statements = []
    conn = world.index.conn
    world.footprint("1000")  # the index is in step with HEAD from here on
    conn.set_trace_callback(statements.append)
    try:
        world.footprint("1000")
    finally:
        conn.set_trace_callback(None)
    selects = [q for q in statements if q.lstrip().upper().startswith("SELECT")]
    assert len(selects) >= 4  # occ by key, names, handles by handle, both_packed by key, followers
    for q in selects:
        plan = [row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + q)]
        assert all(step.startswith("SEARCH") or step == "SCAN indexed" or "TEMP B-TREE" in step
                   for step in plan), (q, plan)


def test_samples(world):
    s = world.samples("1000", "alpha", limit=2)
    assert s["unhashed"]["profile"]["userid"] == "1000"
    assert s["hashed"]["profile"]["userid"] == P0
    assert len(s["unhashed"]["authored"]) == 2
    assert {r["tweetid"] for r in s["unhashed"]["referring"]} <= {"3", "4", "5", "6"}
    assert len(s["hashed"]["referring"]) == 2


def test_stale_index_is_rebuilt(world, tmp_path):
    world.apply("b1", [("1000", "remove")])
    world.index.conn.execute("UPDATE indexed SET version = 1 WHERE dataset='alpha'")
    assert world.footprint("10000")[0].authored_tweets == 2


def test_one_engine_serves_many_threads(world):
    """A threaded web server shares one Engine: lookups from other threads work and agree."""
    import threading

    expected = world.footprint("1000")
    results, errors = [], []

    def look():
        try:
            results.append(world.footprint("1000"))
        except Exception as exc:  # collected, so the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=look) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [expected] * 4
