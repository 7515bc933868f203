"""`appeals accounts add`: the account directory's stand-in, validated, with the password from stdin."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from appeals import db
from appeals.cli import cli
from appeals.models import Account, AuditEntry
from appeals.services.passwords import verify_password

PASSWORD = "a long enough password"


def run(settings_env, *args, password=PASSWORD):
    result = CliRunner().invoke(cli, ["accounts", "add", *args], input=f"{password}\n", env=settings_env,
                                catch_exceptions=False)
    db.session.remove()
    return result


def _accounts() -> int:
    return db.session.scalar(select(func.count()).select_from(Account))


def test_add_creates_an_account_that_can_log_in(settings_env, client):
    result = run(settings_env, "--user-id", "1234567890", "--screen-name", "Baker_Jo", "--email", "jo@example.org",
                 "--followers", "12", "--suspended", "--password-stdin")
    assert result.exit_code == 0, result.output
    assert "@Baker_Jo" in result.output and "suspended" in result.output
    account = db.session.scalars(select(Account)).one()
    assert (account.user_id, account.screen_name_lower, account.followers, account.suspended) == (
        "1234567890", "baker_jo", 12, True)
    assert account.password_hash.startswith("$argon2id$") and verify_password(account.password_hash, PASSWORD)
    assert db.session.scalars(select(AuditEntry.action)).all() == ["account.create"]

    from tests.owner.conftest import web_login

    assert web_login(client, "baker_jo", PASSWORD).status_code == 302


def test_add_json_output(settings_env):
    result = run(settings_env, "--user-id", "42", "--screen-name", "jo", "--password-stdin", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"id": json.loads(result.output)["id"], "user_id": "42", "screen_name": "jo",
                                         "email": None, "followers": 0, "suspended": False}


@pytest.mark.parametrize(
    "args, password, message",
    [
        (["--user-id", "", "--screen-name", "jo"], PASSWORD, "user id"),
        (["--user-id", "12 34", "--screen-name", "jo"], PASSWORD, "user id"),
        (["--user-id", "1", "--screen-name", "far_too_long_a_name"], PASSWORD, "screen name"),
        (["--user-id", "1", "--screen-name", "bad-name"], PASSWORD, "screen name"),
        (["--user-id", "1", "--screen-name", "jo", "--email", "nope"], PASSWORD, "email"),
        (["--user-id", "1", "--screen-name", "jo", "--followers", "-1"], PASSWORD, "follower"),
        (["--user-id", "1", "--screen-name", "jo"], "short", "at least"),
    ],
)
def test_add_refuses_bad_input_and_changes_nothing(settings_env, args, password, message):
    result = run(settings_env, *args, "--password-stdin", password=password)
    assert result.exit_code != 0
    assert message in result.output
    assert _accounts() == 0


def test_add_needs_the_password_on_stdin(settings_env):
    result = CliRunner().invoke(cli, ["accounts", "add", "--user-id", "1", "--screen-name", "jo"], env=settings_env)
    assert result.exit_code != 0 and "--password-stdin" in result.output
    assert _accounts() == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--user-id", "1", "--screen-name", "other"], "user id 1 already exists"),
        (["--user-id", "2", "--screen-name", "JO"], "@JO is already taken"),
        (["--user-id", "3", "--screen-name", "other", "--email", "JO@example.org"], "already belongs"),
    ],
)
def test_add_refuses_duplicates(settings_env, args, message):
    assert run(settings_env, "--user-id", "1", "--screen-name", "jo", "--email", "jo@example.org",
               "--password-stdin").exit_code == 0
    result = run(settings_env, *args, "--password-stdin")
    assert result.exit_code != 0 and message in result.output
    assert _accounts() == 1
