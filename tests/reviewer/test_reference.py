"""Default reason codes and templates from the data migration; GET /api/v1/reference for staff."""

from __future__ import annotations

import os
import subprocess
import sys

import pyotp
import pytest
from sqlalchemy import create_engine, select, text

from appeals import db, runtime, schema
from appeals.models import Account, MessageTemplate, ReasonCode, Staff
from appeals.services.reference import DEFAULT_REASON_CODES, DEFAULT_TEMPLATES
from config import Settings
from tests.conftest import PASSWORD, light_hash
from tests.reviewer.conftest import bearer, make_appeal, token_for

ENTRY = "from appeals.cli import main; main()"


@pytest.fixture
def fresh_install(tmp_path, redis_url):
    """An empty database migrated by `appeals db upgrade` (a subprocess, as an operator runs it)."""
    url = os.environ.get("APPEALS_TEST_MIGRATION_DATABASE_URL") or f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    if url.startswith("postgresql"):
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    env = {**os.environ, "APPEALS_MODE": "test", "APPEALS_HOME": str(tmp_path / "home"),
           "APPEALS_DATABASE_URL": url, "APPEALS_REDIS_URL": redis_url}
    done = subprocess.run([sys.executable, "-c", ENTRY, "db", "upgrade"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    settings = runtime.bootstrap(Settings.from_env(env))
    yield settings
    db.session.remove()


def test_a_reviewer_approves_with_a_default_reason_code_after_upgrade_on_an_empty_database(fresh_install):
    """No seeding, no admin page: the migration's defaults are there, listed by the API and accepted."""
    from appeals import create_app

    reviewer = Staff(email="first@review.example", role="reviewer", password_hash=light_hash(PASSWORD),
                     totp_secret=pyotp.random_base32(), active=True)
    owner = Account(user_id="3000001", screen_name="first_owner", screen_name_lower="first_owner",
                    password_hash=light_hash(PASSWORD), followers=10)
    db.session.add_all([reviewer, owner])
    db.session.commit()
    appeal = make_appeal(owner)
    client = create_app(fresh_install).test_client()
    rita = bearer(token_for(client, reviewer))

    assert client.get("/api/v1/reference").status_code == 401
    listing = client.get("/api/v1/reference", headers=rita)
    assert listing.status_code == 200
    body = listing.get_json()
    assert {(c["code"], c["applies_to"]) for c in body["reason_codes"]} == \
        {(code, applies) for code, _, applies in DEFAULT_REASON_CODES}
    assert {t["name"] for t in body["templates"]} == {name for name, _ in DEFAULT_TEMPLATES}
    code = next(c["code"] for c in body["reason_codes"] if c["applies_to"] in ("approve", "any"))

    claimed = client.post(f"/api/v1/appeals/{appeal.id}/claim", headers=rita)
    assert claimed.status_code == 200, claimed.get_json()
    approved = client.post(f"/api/v1/appeals/{appeal.id}/decision", headers=rita,
                           json={"action": "approve", "remedy": "remove", "reason_code": code,
                                 "statement": "The account is authentic.", "version": claimed.get_json()["version"]})
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["decision"]["reason_code"] == code


def test_the_reference_listing_is_for_staff_only(client, make_account):
    """An account owner's token gets a JSON 403."""
    make_account("3000002", "curious_owner")
    token = client.post("/api/v1/tokens", json={"username": "curious_owner", "password": PASSWORD})
    assert token.status_code == 201, token.get_json()
    response = client.get("/api/v1/reference", headers=bearer(token.get_json()["token"]))
    assert response.status_code == 403 and response.get_json()["code"]


def test_downgrade_removes_only_untouched_defaults_and_upgrade_adds_no_duplicates(tmp_path):
    """An edited code, an edited template and a code used by a decision survive the downgrade."""
    url = f"sqlite:///{tmp_path / 'ref.sqlite3'}"
    schema.upgrade(url)
    engine = db.make_engine(url)
    edited, used = DEFAULT_REASON_CODES[0][0], DEFAULT_REASON_CODES[2][0]
    with engine.begin() as conn:
        conn.execute(text("UPDATE reason_codes SET label = 'Ours now' WHERE code = :c"), {"c": edited})
        conn.execute(text("UPDATE message_templates SET body = body || ' Thanks.' WHERE name = :n"),
                     {"n": DEFAULT_TEMPLATES[0][0]})
    runtime.bootstrap(Settings.from_env({"APPEALS_MODE": "test", "APPEALS_HOME": str(tmp_path / "h"),
                                         "APPEALS_DATABASE_URL": url}))
    owner = Account(user_id="1", screen_name="a", screen_name_lower="a", password_hash="x", followers=0)
    db.session.add(owner)
    db.session.commit()
    appeal = make_appeal(owner, status="denied")
    appeal.decision_reason_code = used
    db.session.commit()
    db.session.remove()

    schema.downgrade(url, "0002_queue_indexes")
    with engine.connect() as conn:
        codes = set(conn.scalars(select(ReasonCode.code)))
        names = set(conn.scalars(select(MessageTemplate.name)))
    assert codes == {edited, used}
    assert names == {DEFAULT_TEMPLATES[0][0]}

    schema.upgrade(url)
    with engine.connect() as conn:
        assert len(conn.scalars(select(ReasonCode.code)).all()) == len(DEFAULT_REASON_CODES)
        assert len(conn.scalars(select(MessageTemplate.name)).all()) == len(DEFAULT_TEMPLATES)
        assert conn.scalar(select(ReasonCode.label).where(ReasonCode.code == edited)) == "Ours now"
