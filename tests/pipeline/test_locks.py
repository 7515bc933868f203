"""The dataset lock: expiry, fencing tokens, renewal, and never releasing a successor's lock."""

from __future__ import annotations

import time

import pytest
import redis

from workers import locks


@pytest.fixture
def conn(redis_url, settings):
    return redis.Redis.from_url(redis_url)


def test_a_held_lock_refuses_others_until_released(conn):
    """While held, others wait and then give up; after release the next holder gets a higher token."""
    first = locks.acquire(conn, "t", ttl=5)
    with pytest.raises(locks.LockBusy):
        locks.acquire(conn, "t", ttl=5, wait=0.3)
    assert first.release()
    second = locks.acquire(conn, "t", ttl=5)
    assert second.token > first.token


def test_a_dead_holders_lock_expires_and_its_late_release_does_nothing(conn):
    """A holder that stops renewing loses the lock; waking up late it can neither renew nor release it."""
    dead = locks.acquire(conn, "t", ttl=0.3)
    time.sleep(0.5)
    successor = locks.acquire(conn, "t", ttl=5)
    assert successor.token > dead.token
    with pytest.raises(locks.LockLost):
        dead.renew()
    assert not dead.release()
    assert successor.held() and locks.is_held(conn, "t")


def test_held_renews_while_the_work_takes_longer_than_the_ttl(conn):
    """The context manager keeps the lock alive past its ttl and lets go at the end."""
    with locks.held(conn, "t", ttl=0.6) as lock:
        time.sleep(1.5)
        assert lock.held() and lock.lost is None
    assert not locks.is_held(conn, "t")


def test_tokens_stay_above_the_floor_when_redis_lost_its_counter(conn):
    """After a flush the counter restarts; the floor (highest token on record) keeps tokens increasing."""
    lock = locks.acquire(conn, "t", ttl=5)
    lock.release()
    conn.flushdb()
    assert locks.acquire(conn, "t", ttl=5, floor=lock.token + 40).token == lock.token + 41
