"""An unmigrated or outdated database: one line naming `appeals db upgrade` from every command; 503 from pages."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from appeals import db, schema
from config import Settings

ENTRY = "from appeals.cli import main; main()"

# Every command that reads or writes the database, with the input it needs.
DB_COMMANDS = [
    (["corrections", "apply", "--remove", "1", "--reason", "test"], None),
    (["corrections", "list"], None),
    (["corrections", "retry", "1"], None),
    (["staff", "list"], None),
    (["staff", "add", "--email", "a@b.example", "--role", "admin", "--password-stdin"], "pw-long-enough-1\n"),
    (["staff", "otp", "--email", "a@b.example"], None),
    (["accounts", "add", "--user-id", "1", "--screen-name", "x", "--password-stdin"], "pw-long-enough-1\n"),
    (["worker", "--burst"], None),
]


def _env(tmp_path, redis_url, url) -> dict:
    return {**os.environ, "APPEALS_MODE": "test", "APPEALS_HOME": str(tmp_path / "home"),
            "APPEALS_DATABASE_URL": url, "APPEALS_REDIS_URL": redis_url}


def _run_all(env: dict, commands) -> list[tuple[list[str], subprocess.CompletedProcess]]:
    procs = [(args, stdin, subprocess.Popen([sys.executable, "-c", ENTRY, *args], env=env, text=True,
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
             for args, stdin in commands]
    results = []
    for args, stdin, proc in procs:
        out, err = proc.communicate(stdin, timeout=120)
        results.append((args, subprocess.CompletedProcess(args, proc.returncode, out, err)))
    return results


def _assert_one_line_naming_upgrade(args, done) -> None:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0, (args, done.stdout)
    assert "Traceback" not in done.stderr, (args, done.stderr[-2000:])
    assert len(lines) == 1 and "appeals db upgrade" in lines[0], (args, done.stderr[-2000:])


def test_every_database_command_on_an_empty_database_says_run_db_upgrade(tmp_path, redis_url):
    """Never migrated: each command prints one line naming `appeals db upgrade`, and no traceback."""
    env = _env(tmp_path, redis_url, f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    for args, done in _run_all(env, DB_COMMANDS):
        _assert_one_line_naming_upgrade(args, done)


def test_an_outdated_database_gets_the_same_line_and_upgrade_fixes_it(tmp_path, redis_url):
    """Migrated to an older revision: the same one line; after `appeals db upgrade` the command works."""
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    schema.upgrade(url, "0001_initial")
    env = _env(tmp_path, redis_url, url)
    [(args, done)] = _run_all(env, [(["corrections", "list"], None)])
    _assert_one_line_naming_upgrade(args, done)
    assert "0001_initial" in done.stderr
    [(_, upgraded)] = _run_all(env, [(["db", "upgrade"], None)])
    assert upgraded.returncode == 0, upgraded.stderr[-2000:]
    [(_, listed)] = _run_all(env, [(["corrections", "list"], None)])
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr[-2000:]


@pytest.mark.parametrize("path", ["/", "/login", "/review/login", "/datasets"])
def test_pages_answer_503_naming_db_upgrade(tmp_path, redis_url, path):
    """A page on an unmigrated database is a 503 that says what to run."""
    from appeals import create_app

    app = create_app(Settings.from_env(_env(tmp_path, redis_url, f"sqlite:///{tmp_path / 'empty.sqlite3'}")))
    response = app.test_client().get(path)
    assert response.status_code == 503
    assert "appeals db upgrade" in response.get_data(as_text=True)
    db.session.remove()


@pytest.mark.parametrize("method,path", [("GET", "/api/v1/queue"), ("POST", "/api/v1/tokens"),
                                         ("GET", "/api/v1/datasets")])
def test_api_answers_json_503_naming_db_upgrade(tmp_path, redis_url, method, path):
    """The API says the same in its JSON error shape."""
    from appeals import create_app

    app = create_app(Settings.from_env(_env(tmp_path, redis_url, f"sqlite:///{tmp_path / 'empty.sqlite3'}")))
    response = app.test_client().open(path, method=method, json={} if method == "POST" else None)
    assert response.status_code == 503
    body = response.get_json()
    assert body["code"] == "schema_outdated" and "appeals db upgrade" in body["message"]
    db.session.remove()


def test_the_quick_head_reading_agrees_with_alembic():
    """The start-up check reads the scripts' heads without Alembic; they must be Alembic's heads."""
    assert schema.script_heads() == frozenset(schema.heads())
