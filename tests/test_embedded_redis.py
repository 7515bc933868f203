"""One owner per embedded Redis server: commands that need none start none; whoever starts one stops it."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import redis

from config import Settings
from workers import connection

ENTRY = "from appeals.cli import main; main()"


def _env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPEALS_")}
    env.update(APPEALS_MODE="test", APPEALS_HOME=str(tmp_path / "home"))
    return env


def _servers_of(home) -> list[psutil.Process]:
    """redis-server processes working in `home` (Redis rewrites its command line, but chdirs to --dir)."""
    found = []
    for proc in psutil.process_iter(["name", "cwd"]):
        if proc.info["name"] == "redis-server" and (proc.info["cwd"] or "").startswith(str(home)):
            found.append(proc)
    return found


def _appeals(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", ENTRY, *args], env=env, capture_output=True, text=True, timeout=120)


def test_commands_that_need_no_redis_start_none(tmp_path):
    """--help, datasets list and db upgrade on the embedded defaults never start redis-server."""
    env = _env(tmp_path)
    home = tmp_path / "home"
    for args in (["--help"], ["datasets", "list"], ["db", "upgrade"]):
        done = _appeals(env, *args)
        assert done.returncode == 0, (args, done.stderr[-2000:])
        assert "redis" not in done.stderr.lower(), (args, done.stderr[-2000:])
        assert not (home / "redis").exists(), f"{args} started the embedded Redis"
    assert not _servers_of(home)


def test_a_command_that_starts_the_embedded_server_stops_it_at_exit(tmp_path):
    """`corrections apply` and `worker --burst` start the server they need and leave none running."""
    env = _env(tmp_path)
    home = tmp_path / "home"
    assert _appeals(env, "db", "upgrade").returncode == 0
    for args in (["corrections", "apply", "--remove", "12345", "--reason", "nothing to do"], ["worker", "--burst"]):
        done = _appeals(env, *args)
        assert done.returncode == 0, (args, done.stderr[-2000:])
        assert (home / "redis").exists(), f"{args} did not use the embedded Redis"
        assert "shutdown failed" not in done.stderr.lower(), done.stderr[-2000:]
        assert not _servers_of(home), f"{args} left its redis-server running"


def test_a_process_that_finds_the_server_running_connects_and_leaves_it_to_its_owner(tmp_path):
    """The owner (this test process) keeps its server; a command run meanwhile uses it and does not stop it."""
    env = _env(tmp_path)
    settings = Settings.from_env(env)
    url = connection.redis_url(settings)
    try:
        [server] = _servers_of(tmp_path / "home")
        assert _appeals(env, "db", "upgrade").returncode == 0
        done = _appeals(env, "corrections", "apply", "--remove", "12345", "--reason", "nothing to do")
        assert done.returncode == 0, done.stderr[-2000:]
        assert server.is_running() and redis.Redis.from_url(url).ping()
        assert _servers_of(tmp_path / "home") == [server]
    finally:
        connection.stop_owned()
    assert not _servers_of(tmp_path / "home")
