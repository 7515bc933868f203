"""Crash injection at every checkpoint: the store shows the old or the new release, and a re-run completes once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workers.engine import faults
from workers.engine.api import Engine

from .conftest import KEY, KEY_ID, reopen


class Crash(BaseException):
    """Stands for kill -9 in process (BaseException: nothing may catch it)."""


@pytest.mark.parametrize("point", faults.POINTS)
def test_crash_in_process(world, point):
    data_dir = world.data_dir
    before = {n: world.get_dataset(n).current_version for n in ("alpha", "gamma")}

    def hook(name):
        if name == point:
            raise Crash(name)

    faults.test_hook = hook
    with pytest.raises(Crash):
        world.apply("b1", [("1000", "remove")])
    faults.test_hook = None
    fresh = reopen(world)  # a restarted worker
    now = {n: fresh.get_dataset(n).current_version for n in ("alpha", "gamma")}
    published = point == "after_publish"
    assert now == ({"alpha": 2, "gamma": 2} if published else before)  # all or nothing, both datasets
    assert not any((data_dir / "staging").iterdir())
    res = fresh.apply("b1", [("1000", "remove")])
    assert res.already_applied == published
    assert fresh.get_dataset("alpha").current_version == 2
    assert fresh.apply("b1", [("1000", "remove")]).already_applied
    assert fresh.get_dataset("alpha").current_version == 2
    assert all(fresh.verify(n).ok for n in ("alpha", "gamma"))
    assert fresh.footprint("1000") == [e for e in fresh.footprint("1000")]
    fresh.reindex()
    assert {e.dataset for e in fresh.footprint("10000")} == {"alpha"}


@pytest.mark.parametrize("point", ["mid_rewrite", "mid_publish", "after_publish"])
def test_kill_9(world, point):
    """A real SIGKILL through APPEALS_FAULT_KILL_AT in a child process."""
    root = Path(__file__).resolve().parents[2]
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(root)!r})
        import os
        from config import Settings
        from workers.engine import faults
        from workers.engine.api import Engine
        from workers.engine.store import open_store
        s = Settings.from_env()
        faults.arm(s.fault_kill_at)
        Engine(s.data_dir, {KEY!r}, {KEY_ID!r}, store=open_store(s)).apply("b1", [("1000", "rehash")])
    """)
    env = dict(os.environ, APPEALS_FAULT_KILL_AT=point, APPEALS_MODE="test", APPEALS_DATA_DIR=str(world.data_dir))
    if getattr(world.store, "remote", False):
        env.update(APPEALS_STORE_URL=world.store.url, APPEALS_S3_ENDPOINT_URL=world.store.client.meta.endpoint_url)
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
    assert p.returncode == -9, p.stderr.decode()
    fresh = reopen(world)
    assert fresh.get_dataset("alpha").current_version == (2 if point == "after_publish" else 1)
    fresh.apply("b1", [("1000", "rehash")])
    assert fresh.get_dataset("alpha").current_version == 2
    assert fresh.verify("alpha").ok


def test_a_failure_in_one_rewriting_thread_publishes_nothing(world, monkeypatch):
    """Files are rewritten in parallel: a write failing in one thread (a full disk, say) stops the
    correction, leaves every dataset as it was and no staging behind, and a retry completes."""
    from workers.engine import store

    real_write = store.HashingWriter.write
    failed = []

    def write(self, data):
        if "tweets" in self.path.name and not failed:
            failed.append(self.path.name)
            raise OSError(28, "No space left on device")
        real_write(self, data)

    monkeypatch.setattr(store.HashingWriter, "write", write)
    before = {n: world.get_dataset(n).current_version for n in ("alpha", "gamma")}
    with pytest.raises(OSError, match="No space left"):
        world.apply("b1", [("1000", "remove")])
    assert failed and {n: world.get_dataset(n).current_version for n in ("alpha", "gamma")} == before
    assert not any((world.data_dir / "staging").iterdir())
    monkeypatch.setattr(store.HashingWriter, "write", real_write)
    res = world.apply("b1", [("1000", "remove")])
    assert not res.already_applied and world.get_dataset("alpha").current_version == before["alpha"] + 1
    assert all(world.verify(n).ok for n in ("alpha", "gamma"))
