"""A lock in Redis with an expiry and a fencing token, so a dead holder never blocks for good.

The holder keeps the lock alive with `renew` while it works. If it dies the key expires
and the next holder gets a higher token (a Redis INCR); the engine refuses to publish
under a token lower than one it has already seen, so a stalled former holder that wakes
up late cannot overwrite a newer release.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from contextlib import contextmanager

import redis

log = logging.getLogger("appeals.locks")

KEY_PREFIX = "appeals:lock:"
FENCE_KEY = "appeals:fence"  # one counter for every lock: tokens only ever grow

# Release and renew only if the key still holds our value: never touch a successor's lock.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# A new token: above every token used before, even when Redis lost the counter (`floor`).
_NEXT_TOKEN = """
local v = redis.call('INCR', KEYS[1])
if v <= tonumber(ARGV[1]) then
  v = tonumber(ARGV[1]) + 1
  redis.call('SET', KEYS[1], v)
end
return v
"""
# Renew; if the key is gone (Redis restarted empty) take it back, and lift the fence
# counter above our token, so no later holder can draw a token at or below ours.
_RENEW = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if current then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if (tonumber(redis.call('GET', KEYS[2]) or '0')) < tonumber(ARGV[3]) then redis.call('SET', KEYS[2], ARGV[3]) end
return 1
"""


class LockBusy(Exception):
    """Someone else holds the lock and did not let go within the wait."""


class LockLost(Exception):
    """The lock expired or was taken over while we believed we held it."""


class Lock:
    """One acquisition of a named lock: its fencing `token` and the means to renew and release it."""

    def __init__(self, conn: redis.Redis, name: str, token: int, value: str, ttl: float):
        self.conn = conn
        self.name = name
        self.key = KEY_PREFIX + name
        self.token = token
        self.value = value
        self.ttl = ttl
        self.lost: str | None = None  # set by `held`'s renewing thread when renewal fails

    def renew(self) -> None:
        """Push the expiry back by the lock's ttl (re-taking a vanished key); raises LockLost if someone else has it."""
        if not self.conn.eval(_RENEW, 2, self.key, FENCE_KEY, self.value, int(self.ttl * 1000), self.token):
            raise LockLost(f"lock {self.name!r} (token {self.token}) expired or was taken over")

    def release(self) -> bool:
        """Let go if still ours; True when it was."""
        return bool(self.conn.eval(_RELEASE, 1, self.key, self.value))

    def held(self) -> bool:
        """True while the key still carries this acquisition."""
        current = self.conn.get(self.key)
        return current is not None and current.decode() == self.value


def acquire(conn: redis.Redis, name: str, ttl: float, wait: float = 0.0, floor: int = 0,
            poll: float = 0.2) -> Lock:
    """Take lock `name` for `ttl` seconds, waiting up to `wait` seconds; raises LockBusy.

    The fencing token is greater than `floor` (the highest token recorded elsewhere).
    """
    deadline = time.monotonic() + wait
    while True:
        # Draw the token first: a token drawn by a loser is simply never used.
        token = int(conn.eval(_NEXT_TOKEN, 1, FENCE_KEY, int(floor)))
        value = f"{token}:{uuid.uuid4().hex}"
        if conn.set(KEY_PREFIX + name, value, nx=True, px=int(ttl * 1000)):
            return Lock(conn, name, token, value, ttl)
        if time.monotonic() >= deadline:
            raise LockBusy(f"lock {name!r} is held by another worker")
        time.sleep(poll)


def is_held(conn: redis.Redis, name: str) -> bool:
    """True when someone holds lock `name` right now."""
    return bool(conn.exists(KEY_PREFIX + name))


@contextmanager
def held(conn: redis.Redis, name: str, ttl: float, wait: float = 0.0, floor: int = 0):
    """Hold lock `name` for the duration of the block, renewing it every ttl/3 from a thread.

    The renewing thread stops when the block ends. While Redis is unreachable it keeps
    trying (the holder carries on with its work); if another holder took the lock it is
    marked lost (`lock.lost`), and the fencing token still protects what the holder publishes.
    """
    lock = acquire(conn, name, ttl, wait, floor)
    stop = threading.Event()

    def keep_alive() -> None:
        while not stop.wait(ttl / 3):
            try:
                lock.renew()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("cannot renew lock %s while Redis is away (%s); retrying", name, exc)
            except (LockLost, redis.RedisError) as exc:
                lock.lost = str(exc)
                log.error("%s", exc)
                return

    thread = threading.Thread(target=keep_alive, name=f"lock-{name}", daemon=True)
    thread.start()
    try:
        yield lock
    finally:
        stop.set()
        thread.join(timeout=5)
        try:
            lock.release()
        except redis.RedisError:
            # It expires on its own; a successor gets a higher token either way.
            log.warning("could not release lock %s; it will expire", name, exc_info=True)
