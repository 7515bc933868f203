"""The S3 store's own guarantees: conditional commits under races, and migrate-store (issue 17)."""

from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner

from workers.engine import faults
from workers.engine.api import Engine
from workers.engine.errors import PublishConflict
from workers.engine.s3store import S3Store

from .conftest import KEY, KEY_ID, make_alpha, make_gamma, reopen


@pytest.fixture
def bucket(moto_s3):
    return moto_s3.new_bucket()


def test_racing_committers_lose_no_update(tmp_path, moto_s3, bucket):
    """Several committers on several 'machines' each add to HEAD at once: every addition survives,
    because a conditional write that lost re-reads HEAD and applies its change to the winner's."""
    stores = [S3Store(tmp_path / f"m{i}", bucket, moto_s3.endpoint) for i in range(3)]
    calls = []

    def add(tag):
        def update(cur):
            calls.append(tag)
            cur["batches"][tag] = "0" * 64
            return cur
        return update

    threads = [threading.Thread(target=lambda s=s, i=i: [s.publish(add(f"{i}-{k}")) for k in range(4)])
               for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    head = stores[0].read_head()
    assert sorted(head["batches"]) == sorted(f"{i}-{k}" for i in range(3) for k in range(4))
    assert head["generation"] == 12


def test_the_loser_of_a_race_retries_on_the_winners_state(tmp_path, moto_s3, bucket):
    """A commits its read; B commits in between; A's conditional write fails, and its update runs again
    on B's HEAD (no lost update)."""
    a = S3Store(tmp_path / "a", bucket, moto_s3.endpoint)
    b = S3Store(tmp_path / "b", bucket, moto_s3.endpoint)
    seen = []

    def a_update(cur):
        seen.append(dict(cur["batches"]))
        if len(seen) == 1:
            b.publish(lambda c: {**c, "batches": {**c["batches"], "b": "1" * 64}})  # B wins the race
        cur["batches"]["a"] = "2" * 64
        return cur

    a.publish(a_update)
    assert seen == [{}, {"b": "1" * 64}]
    assert a.read_head()["batches"] == {"b": "1" * 64, "a": "2" * 64}


def test_two_engines_correcting_the_same_dataset_one_wins_the_other_retries(tmp_path, moto_s3, bucket):
    """Two workers (own work dirs, one bucket) publish corrections of the same dataset at once: the
    loser's commit sees the dataset changed (a conflict, never a lost update) and its retry succeeds."""
    first = Engine(tmp_path / "w1", KEY, KEY_ID, store=S3Store(tmp_path / "w1", bucket, moto_s3.endpoint))
    first.import_dataset(make_alpha(tmp_path / "src"), "alpha")
    second = Engine(tmp_path / "w2", KEY, KEY_ID, store=S3Store(tmp_path / "w2", bucket, moto_s3.endpoint))

    def hook(name):
        if name == "mid_publish":
            faults.test_hook = None
            second.apply("b-second", [("777", "rehash")])  # commits while the first is about to

    faults.test_hook = hook
    with pytest.raises(PublishConflict, match="changed since"):
        first.apply("b-first", [("1000", "remove")])
    assert second.get_dataset("alpha").current_version == 2
    res = first.apply("b-first", [("1000", "remove")])  # the retry, on the new state
    assert res.releases == {"alpha": 3} and not res.already_applied
    assert first.verify("alpha").ok
    gone = first.footprint("1000")
    assert gone == second.footprint("1000")  # the other machine's index follows (snapshot from the store)
    assert all(e.authored_tweets == 0 and not e.in_users_file for e in gone)


def _cli_env(tmp_path, moto_s3) -> dict:
    return {"APPEALS_MODE": "test", "APPEALS_HOME": str(tmp_path / "home"),
            "APPEALS_DATA_DIR": str(tmp_path / "data"), "APPEALS_S3_ENDPOINT_URL": moto_s3.endpoint}


def test_migrate_store_interrupted_and_resumed_gives_a_bucket_that_verifies(tmp_path, moto_s3, bucket):
    from workers.cli.datasets import datasets

    local = Engine(tmp_path / "data", KEY, KEY_ID)
    local.import_dataset(make_alpha(tmp_path / "src_a"), "alpha")
    local.import_dataset(make_gamma(tmp_path / "src_g"), "gamma")
    local.apply("b1", [("1000", "rehash")])
    env = _cli_env(tmp_path, moto_s3)
    r = CliRunner()

    class Interrupted(BaseException):
        pass

    copied = []

    def hook(name):
        if name == "migrate_blob":
            copied.append(1)
            if len(copied) == 5:
                raise Interrupted()

    faults.test_hook = hook
    with pytest.raises(Interrupted):
        r.invoke(datasets, ["migrate-store", "--to", bucket], env=env, catch_exceptions=False)
    faults.test_hook = None
    probe = S3Store(tmp_path / "probe", bucket, moto_s3.endpoint)
    assert probe.read_head()["datasets"] == {}  # interrupted before HEAD: nothing visible yet

    res = r.invoke(datasets, ["migrate-store", "--to", bucket], env=env)
    assert res.exit_code == 0, res.output
    assert "HEAD written" in res.output
    again = r.invoke(datasets, ["migrate-store", "--to", bucket], env=env)
    assert again.exit_code == 0 and "0 copied" in again.output and "HEAD unchanged" in again.output

    remote = Engine(tmp_path / "other-machine", KEY, KEY_ID, store=probe)
    for ds in remote.list_datasets():
        for v in ds.versions:
            report = remote.verify(ds.name, v.version)
            assert report.ok, report.problems
    assert {d.name: d.current_version for d in remote.list_datasets()} == {"alpha": 2, "gamma": 2}
    assert [e.dataset for e in remote.footprint("10000")] == ["alpha"]
    assert remote.apply("b1", [("1000", "rehash")]).already_applied  # the batch record came along


def test_migrate_store_refuses_a_bucket_holding_another_store(tmp_path, moto_s3, bucket):
    from workers.cli.datasets import datasets

    other = Engine(tmp_path / "x", KEY, KEY_ID, store=S3Store(tmp_path / "x", bucket, moto_s3.endpoint))
    other.import_dataset(make_alpha(tmp_path / "src_x", name="alpha"), "alpha")
    # The same data imported in the same second gives the same release 1 (content-addressed), so the
    # stores part at version 2: a different correction in each.
    other.apply("b-other", [("555", "remove")])
    local = Engine(tmp_path / "data", KEY, KEY_ID)
    local.import_dataset(make_alpha(tmp_path / "src_a"), "alpha")
    local.apply("b1", [("1000", "rehash")])
    res = CliRunner().invoke(datasets, ["migrate-store", "--to", bucket], env=_cli_env(tmp_path, moto_s3))
    assert res.exit_code == 1 and "different store" in res.output
    assert reopen(other).get_dataset("alpha").current_version == 2
    assert reopen(other).manifest("alpha")["batch_id"] == "b-other"


def test_store_url_must_be_s3():
    from config import ConfigError, Settings

    with pytest.raises(ConfigError, match="s3://"):
        Settings.from_env({"APPEALS_MODE": "test", "APPEALS_STORE_URL": "/some/dir"})
