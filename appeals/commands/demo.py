"""`appeals demo`: the whole product from one command: embedded Redis, a worker and the web app."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import click

# Children are started as `python -c` on the console-script entry point: the same code as
# `appeals ...`, without depending on the script being on PATH.
_ENTRY = "from appeals.cli import main; main()"
READY_TIMEOUT = 120
STOP_TIMEOUT = 30


def _set_parent_death_signal() -> None:
    # Runs in the child before exec: if the demo is killed outright, its children follow.
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _spawn(args: list[str], env: dict) -> subprocess.Popen:
    # A session of their own: Ctrl-C reaches the demo only, which then stops them in order.
    return subprocess.Popen([sys.executable, "-c", _ENTRY, *args], env=env, start_new_session=True,
                            preexec_fn=_set_parent_death_signal)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _wait_ready(url: str, children: list[subprocess.Popen], stop: threading.Event) -> bool:
    import urllib.error
    import urllib.request  # here, not at the top: every `appeals` command imports this module

    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and not stop.is_set():
        if any(p.poll() is not None for p in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        stop.wait(0.5)
    return False


def _stop(children: list[subprocess.Popen]) -> None:
    """SIGTERM every child (the worker finishes its job, gunicorn its requests), then SIGKILL stragglers."""
    for p in children:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for p in children:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _reset(settings) -> None:
    """--fresh: remove what earlier demos left under the demo home (never anything else)."""
    home = settings.home
    for name in ("appeals.sqlite3", "appeals.sqlite3-wal", "appeals.sqlite3-shm"):
        (home / name).unlink(missing_ok=True)
    for path in (home / "demo-source", home / "redis", settings.data_dir):
        if path.is_dir() and path.resolve().is_relative_to(home.resolve()):
            shutil.rmtree(path)


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the web app listens on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help="Its port.")
@click.option("--fresh", is_flag=True, help="Start from nothing: remove the demo database, data and Redis first.")
def demo(host: str, port: int, fresh: bool) -> None:
    """Seed demo data once, then run the embedded Redis, a worker and the web app until Ctrl-C."""
    from appeals import runtime, schema
    from appeals import demo as demo_data
    from config import ConfigError, Settings
    from workers.connection import redis_url, stop_owned

    # The demo's defaults under whatever the environment says; config.py does the reading.
    defaults = {"APPEALS_HOME": str(Path("instance").resolve()),
                "APPEALS_PUBLIC_URL": f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"}
    try:
        settings = Settings.from_env({**defaults, **os.environ, "APPEALS_MODE": "demo"})
        own_database = Settings.from_env({**defaults, **os.environ, "APPEALS_MODE": "demo",
                                          "APPEALS_DATABASE_URL": ""}).database_url
    except ConfigError as exc:
        raise click.ClickException(f"Configuration error: {exc}") from None
    # Children (worker, web) read the same settings from their environment.
    os.environ.update(APPEALS_MODE="demo", APPEALS_HOME=str(settings.home), APPEALS_PUBLIC_URL=settings.public_url)
    if not _port_free(host, port):
        raise click.ClickException(f"Port {port} on {host} is in use; choose another with --port.")
    if fresh:
        if settings.database_url != own_database:
            click.echo("Note: --fresh does not empty the database named by APPEALS_DATABASE_URL.", err=True)
        _reset(settings)
    runtime.bootstrap(settings)
    click.echo(f"Demo home: {settings.home}")
    schema.upgrade(settings.database_url)
    click.echo("Seeding demo data (the first time takes a little while)...")
    logins = demo_data.seed()

    embedded = not settings.redis_url
    env = dict(os.environ, APPEALS_REDIS_URL=redis_url(settings))  # children share this process's embedded Redis
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    children = [
        _spawn(["worker"], env),
        _spawn(["serve", "--host", host, "--port", str(port), "--workers", "2"], env),
    ]
    failed = False
    try:
        url = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"
        if _wait_ready(url + "/", children, stop):
            _banner(url, settings, logins)
        elif not stop.is_set():
            failed = True
            click.echo("The demo did not come up; see the messages above.", err=True)
        while not stop.is_set() and not failed:
            if any(p.poll() is not None for p in children):
                failed = True
                click.echo("A demo process exited unexpectedly; stopping the others.", err=True)
                break
            stop.wait(0.5)
    finally:
        click.echo("Stopping the demo...")
        _stop(children)
        if embedded:
            stop_owned()  # this process started the embedded server: it stops it, promptly
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failed:
        sys.exit(1)
    click.echo("Demo stopped.")


def _banner(url: str, settings, logins) -> None:
    env = f"APPEALS_MODE=demo APPEALS_HOME={shlex.quote(str(settings.home))}"
    lines = [
        "",
        f"Appeals demo running at {url}",
        "",
        f"Account owners: log in at {url}/login with a screen name and the password {logins.password!r}",
        *(f"  @{name:<20} {note}" for name, note in logins.owners),
        "",
        f"Staff: log in at {url}/review/login with an email and the same password, then a TOTP code:",
        *(f"  {email:<22} {role}" for email, role in logins.staff),
        f"  code:  {env} appeals staff otp --email senior@demo.test",
        "",
        "A senior's confirmation is corrected by the worker with no manual step; emails are logged,",
        "not sent (set APPEALS_SMTP_HOST to send them). Press Ctrl-C to stop everything.",
        "",
    ]
    click.echo("\n".join(lines))


commands = [demo]
