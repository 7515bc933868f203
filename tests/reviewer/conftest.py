"""Helpers for the reviewer tests: staff logins with real TOTP codes, appeals, API tokens."""

from __future__ import annotations

import time
from datetime import timedelta

import pyotp
import pytest

from appeals import db
from appeals.db import utcnow
from appeals.models import Appeal, AppealDataset, Staff
from appeals.services import reference
from appeals.services.audit import Actor
from tests.conftest import PASSWORD, csrf_from

def otp_for(staff: Staff) -> str:
    """A TOTP code the server has not accepted yet, as an authenticator app would show it."""
    fresh = db.session.get(Staff, staff.id, populate_existing=True)
    totp = pyotp.TOTP(fresh.totp_secret)
    while True:
        now_step = int(time.time()) // totp.interval
        step = now_step if fresh.totp_last_step is None else max(now_step, fresh.totp_last_step + 1)
        if step <= now_step + 1:
            return totp.at(step * totp.interval)
        time.sleep(1)  # both codes of this half-minute were used; the next one comes soon


def login(client, staff: Staff, password: str = PASSWORD) -> None:
    """Log `staff` in through the two login forms (password, then TOTP code)."""
    response = client.post("/review/login", data={"csrf_token": csrf_from(client, "/review/login"),
                                                  "email": staff.email, "password": password})
    assert response.status_code == 303, response.get_data(as_text=True)
    response = client.post("/review/login/code", data={"csrf_token": csrf_from(client, "/review/login/code"),
                                                       "code": otp_for(staff)})
    assert response.status_code == 303, response.get_data(as_text=True)


def token_for(client, staff: Staff, password: str = PASSWORD) -> str:
    """A bearer token for `staff` from POST /api/v1/tokens."""
    response = client.post("/api/v1/tokens", json={"username": staff.email, "password": password,
                                                   "otp": otp_for(staff)})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["token"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def actor(staff: Staff) -> Actor:
    return Actor("staff", staff.id, staff.email, "127.0.0.1")


def make_appeal(account, *, status: str = "filed", age_days: float = 1, reason: str = "included_in_error",
                datasets=("alpha_2020",), footprint_size: int = 3, sla_days: int = 14, statement: str | None = None,
                commit: bool = True) -> Appeal:
    """An appeal row as filing leaves it (tests that need the real footprint use the filing service)."""
    created = utcnow() - timedelta(days=age_days)
    appeal = Appeal(
        account_id=account.id, status=status, reason=reason,
        statement=statement or f"I am @{account.screen_name}; I never took part in any campaign.",
        contact_email=f"{account.screen_name}@example.org", created_at=created, updated_at=created,
        due_at=created + timedelta(days=sla_days), footprint_size=footprint_size,
        datasets=[AppealDataset(dataset=name, version=1, authored_tweets=footprint_size, referring_rows=0)
                  for name in datasets],
    )
    db.session.add(appeal)
    if commit:
        db.session.commit()
    return appeal


@pytest.fixture
def new_staff(make_staff):
    """Create a staff member whose password is PASSWORD (the shared factory)."""
    return make_staff


@pytest.fixture
def new_account(make_account):
    """Create a platform account whose password is PASSWORD (the shared factory)."""
    return make_account


@pytest.fixture
def seeded(settings):
    """The default reason codes and templates."""
    return reference.seed_defaults()


@pytest.fixture
def reviewer(new_staff):
    return new_staff("rita@review.example", "reviewer")


@pytest.fixture
def reviewer2(new_staff):
    return new_staff("ravi@review.example", "reviewer")


@pytest.fixture
def senior(new_staff):
    return new_staff("sam@review.example", "senior")


@pytest.fixture
def senior2(new_staff):
    return new_staff("sol@review.example", "senior")


@pytest.fixture
def admin(new_staff):
    return new_staff("ada@review.example", "admin")


@pytest.fixture
def owner(new_account):
    return new_account("1000001", "bakery_jo", email="jo@example.org")


@pytest.fixture
def appeal(owner, seeded):
    return make_appeal(owner)
