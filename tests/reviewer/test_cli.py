"""`appeals staff add|otp|list` on the command line."""

from __future__ import annotations

import json

import pyotp
from sqlalchemy import select

from appeals import db
from appeals.commands.staff import staff
from appeals.models import AuditEntry, Staff


def test_staff_add_json_prints_the_totp_secret(runner, settings_env):
    """The JSON output includes totp_secret and an otpauth URI; the code from it logs in."""
    result = runner.invoke(staff, ["add", "--email", "Nia@Review.example", "--role", "senior", "--password-stdin",
                                   "--json"], input="a long enough password\n", env=settings_env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["role"] == "senior" and data["otpauth_uri"].startswith("otpauth://totp/")
    member = db.session.scalar(select(Staff).where(Staff.id == data["id"]))
    assert member.totp_secret == data["totp_secret"] and pyotp.TOTP(data["totp_secret"]).now().isdigit()
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "staff.add"))
    assert entry.actor_kind == "operator" and "totp" not in json.dumps(entry.after).replace("enrolled", "")


def test_staff_add_validates(runner, settings_env):
    """Bad email, short password, duplicate, missing --password-stdin: clear errors, nothing added."""
    args = ["add", "--email", "x@review.example", "--role", "reviewer", "--password-stdin"]
    short = runner.invoke(staff, args, input="short\n", env=settings_env)
    assert short.exit_code != 0 and "at least 10" in short.output
    bad = runner.invoke(staff, ["add", "--email", "nope", "--role", "reviewer", "--password-stdin"],
                        input="a long enough password\n", env=settings_env)
    assert bad.exit_code != 0 and "email" in bad.output
    role = runner.invoke(staff, ["add", "--email", "x@review.example", "--role", "boss", "--password-stdin"],
                         input="a long enough password\n", env=settings_env)
    assert role.exit_code != 0
    no_stdin = runner.invoke(staff, ["add", "--email", "x@review.example", "--role", "reviewer"], env=settings_env)
    assert no_stdin.exit_code != 0 and "--password-stdin" in no_stdin.output
    assert runner.invoke(staff, args, input="a long enough password\n", env=settings_env).exit_code == 0
    again = runner.invoke(staff, args, input="a long enough password\n", env=settings_env)
    assert again.exit_code != 0 and "already exists" in again.output
    assert len(db.session.scalars(select(Staff)).all()) == 1


def test_staff_otp_prints_a_valid_code_in_test_mode_only(runner, settings_env, new_staff):
    member = new_staff("otp@review.example", "reviewer")
    result = runner.invoke(staff, ["otp", "--email", member.email], env=settings_env)
    assert result.exit_code == 0 and pyotp.TOTP(member.totp_secret).verify(result.output.strip(), valid_window=1)
    import secrets

    signing = settings_env["APPEALS_HOME"] + "/signing_key.pem"
    open(signing, "w").write("a key file")
    production = {**settings_env, "APPEALS_MODE": "production", "APPEALS_SECRET_KEY": secrets.token_urlsafe(48),
                  "APPEALS_HASH_KEY": secrets.token_urlsafe(48), "APPEALS_SIGNING_KEY": signing}
    refused = runner.invoke(staff, ["otp", "--email", member.email], env=production)
    assert refused.exit_code != 0 and "only possible in demo and test" in refused.output
    listing = runner.invoke(staff, ["list", "--json"], env=settings_env)
    assert json.loads(listing.output.splitlines()[0])["email"] == member.email
