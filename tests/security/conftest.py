"""Fixtures for the attack tests: the cast of principals, and logins through the real forms."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, csrf_from  # noqa: F401  (re-exported for the tests)
from tests.owner.conftest import web_login  # noqa: F401
from tests.public.conftest import login_as, make_researcher  # noqa: F401
from tests.reviewer.conftest import bearer, login, make_appeal, otp_for, token_for  # noqa: F401


@pytest.fixture
def jo(make_account):
    """An owner: screen name NewsGop51, with an email."""
    return make_account("100051", "NewsGop51", email="jo@example.org")


@pytest.fixture
def cast(make_account, make_staff, make_researcher):
    """One principal per role of the access matrix."""
    return {
        "owner": make_account("200001", "owner_one", email="one@example.org"),
        "other_owner": make_account("200002", "owner_two", email="two@example.org"),
        "reviewer": make_staff("reviewer@review.example", "reviewer"),
        "senior": make_staff("senior@review.example", "senior"),
        "admin": make_staff("admin@review.example", "admin"),
        "researcher": make_researcher("granted@uni.example", "approved"),
        "researcher_no_grant": make_researcher("pending@uni.example", "pending"),
    }
