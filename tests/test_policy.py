"""THE authorization policy, read as the specification: every principal, action and appeal, compared with a model.

ACTIONS and the appeal rules below are written out by hand, independently of
appeals/services/policy.py. `model` reads them as plain dicts; the policy must give
the same answer (allowed, or the same refusal with the same message) for every
principal x action x appeal of the exhaustive product, and for random clocks,
claims and grants (hypothesis). Pure: no database, no app; principals and appeals
are unsaved model objects and the clock is fixed.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from appeals import runtime
from appeals import status as table
from appeals.models import Account, Appeal, Researcher, Staff
from appeals.services import policy
from appeals.services.errors import Forbidden, NotFound, Unauthorized

NOW = datetime(2026, 11, 30, 12, 0, 0)
IDLE = 30  # minutes: the claim idle time the tests configure

# action                      who may do it (owner: the account that filed the appeal; a staff role: it or above)
ACTIONS_SPEC = """
footprint.view                owner
appeal.file                   owner
appeal.view_own               owner
appeal.reply                  owner
appeal.withdraw               owner
dataset.download_unhashed     researcher
queue.view                    reviewer
appeal.view                   reviewer
appeal.claim                  reviewer
appeal.release                reviewer
appeal.decide                 reviewer
appeal.note                   reviewer
appeal.message                reviewer
appeal.confirm                senior
appeal.send_back              senior
claim.release_any             senior
audit.view                    reviewer
dashboard.view                reviewer
staff.manage                  admin
reference.manage              admin
reference.view                reviewer
correction.retry              admin
researcher.manage             admin
ledger.view                   admin
decision.revoke               admin
"""
ACTIONS: dict[str, str] = dict(line.split() for line in ACTIONS_SPEC.strip().splitlines())
UNKNOWN = "appeal.delete"  # no such action: refused to everyone

RANK = {"reviewer": 1, "senior": 2, "admin": 3}

# The appeal-scoped rules for staff, in the order they are checked: action -> [(condition, refusal)].
# A condition reads the case: escalated (status escalated, or ever was), holds (a live claim of the
# principal's own), senior (the principal's role is senior or above), approver (the principal approved it).
def _escalated_junior(c):
    return c["escalated"] and not c["senior"]


def _no_claim(c):
    return not c["holds"]


APPEAL_RULES: dict[str, list] = {
    "appeal.claim": [(_escalated_junior, "Escalated appeals are for senior reviewers.")],
    "appeal.decide": [
        (_no_claim, "Claim this appeal before acting on it."),
        (_escalated_junior, "Escalated appeals are decided by senior reviewers."),
    ],
    "appeal.message": [
        (_no_claim, "Claim this appeal before acting on it."),
        (_escalated_junior, "Escalated appeals are decided by senior reviewers."),
    ],
    "appeal.release": [(lambda c: not c["holds"] and not c["senior"],
                        "Only the holder or a senior reviewer can release this claim.")],
    "appeal.confirm": [(lambda c: c["approver"],
                        "The approver cannot confirm their own approval; another senior must.")],
    "appeal.send_back": [(lambda c: c["approver"],
                          "The approver cannot confirm their own approval; another senior must.")],
}

OK = (None, None)


def model(who: dict, action: str, appeal: dict | None) -> tuple[type | None, str | None]:
    """What the specification says: OK, or (refusal class, message)."""
    if who["kind"] in ("nobody", "logged out"):
        return Unauthorized, "Please log in."
    need = ACTIONS.get(action)
    if need == "owner":
        if who["kind"] != "account":
            return Forbidden, "Only account owners can do this."
        if appeal is not None and appeal["owner"] != who["id"]:
            return NotFound, "No such appeal."
        return OK
    if need == "researcher":
        if who["kind"] != "researcher" or not who["granted"]:
            return Forbidden, "Unhashed data needs an approved, current researcher grant."
        return OK
    if need is None:
        return Forbidden, f"Unknown action {action!r}."
    if who["kind"] != "staff" or not who["active"] or RANK[who["role"]] < RANK[need]:
        return Forbidden, "Your role does not allow this."
    if appeal is None:
        return OK
    case = {
        "escalated": appeal["status"] == "escalated" or appeal["senior_only"],
        "holds": appeal["holder"] == who["id"] and appeal["claim_age"] is not None and appeal["claim_age"] < IDLE,
        "senior": RANK[who["role"]] >= RANK["senior"],
        "approver": appeal["approver"] == who["id"],
    }
    for condition, refusal in APPEAL_RULES.get(action, []):
        if condition(case):
            return Forbidden, refusal
    return OK


# --- principals: a description for the model, and the object the policy sees ----------------------

OWNER_ID, STRANGER_ID = 7, 8

PRINCIPALS: dict[str, dict] = {
    "nobody": {"kind": "nobody"},
    "logged out": {"kind": "logged out"},
    "owner": {"kind": "account", "id": OWNER_ID},
    "researcher, approved": {"kind": "researcher", "status": "approved", "expires": None, "granted": True},
    "researcher, approved until tomorrow": {"kind": "researcher", "status": "approved", "expires": 24 * 60,
                                            "granted": True},
    "researcher, expired": {"kind": "researcher", "status": "approved", "expires": -1, "granted": False},
    "researcher, expiring now": {"kind": "researcher", "status": "approved", "expires": 0, "granted": False},
    "researcher, pending": {"kind": "researcher", "status": "pending", "expires": None, "granted": False},
    "researcher, revoked": {"kind": "researcher", "status": "revoked", "expires": 24 * 60, "granted": False},
    "reviewer": {"kind": "staff", "id": 21, "role": "reviewer", "active": True},
    "senior": {"kind": "staff", "id": 22, "role": "senior", "active": True},
    "admin": {"kind": "staff", "id": 23, "role": "admin", "active": True},
    "disabled admin": {"kind": "staff", "id": 24, "role": "admin", "active": False},
    # Logged in as none of the kinds (no `is_anonymous`): known, so never 401, but allowed nothing.
    "someone else": {"kind": "other"},
}


def principal(who: dict):
    """The object the policy is given for a principal description."""
    kind = who["kind"]
    if kind == "nobody":
        return None
    if kind == "logged out":
        return SimpleNamespace(is_anonymous=True, id=OWNER_ID)  # Flask-Login's anonymous user
    if kind == "other":
        return SimpleNamespace(id=OWNER_ID, role="admin", status="approved")  # looks alike, is none of them
    if kind == "account":
        return Account(id=who["id"], user_id="7", screen_name="owner")
    if kind == "researcher":
        expires = None if who["expires"] is None else NOW + timedelta(minutes=who["expires"])
        return Researcher(id=31, status=who["status"], expires_at=expires)
    return Staff(id=who["id"], role=who["role"], active=who["active"])


def appeal_object(case: dict) -> Appeal:
    """An unsaved appeal in the situation `case` describes."""
    touched = None if case["claim_age"] is None else NOW - timedelta(minutes=case["claim_age"])
    return Appeal(id=1, account_id=case["owner"], status=case["status"], senior_only=case["senior_only"],
                  assigned_to_id=case["holder"], claim_touched_at=touched, approved_by_id=case["approver"])


@pytest.fixture(autouse=True)
def fixed_clock_and_settings(monkeypatch):
    """The policy reads the clock and the claim idle time; fix both."""
    monkeypatch.setattr(policy, "utcnow", lambda: NOW)
    monkeypatch.setattr(runtime, "settings", lambda: SimpleNamespace(claim_idle_minutes=IDLE))


def outcome(who: dict, action: str, appeal: dict | None) -> tuple[type | None, str | None]:
    """What the policy says, in the model's terms; `can` must agree with `authorize`."""
    subject = principal(who)
    target = None if appeal is None else appeal_object(appeal)
    try:
        policy.authorize(subject, action, target)
    except (Unauthorized, Forbidden, NotFound) as refusal:
        result = (type(refusal), refusal.message)
    else:
        result = OK
    assert policy.can(subject, action, target) is (result == OK)
    return result


# Claim situations, relative to the principal ("me": its own id; "other": another member's):
# (holder, minutes since the claim was touched, approver).
CLAIMS = (
    (None, None, None),
    ("me", 0, None),
    ("me", IDLE - 1, None),
    ("me", IDLE, None),  # idle: the claim has lapsed
    ("me", None, None),  # held but never touched
    ("other", 0, None),
    (None, None, "me"),
    ("me", 0, "me"),
    ("other", 0, "other"),
)
OTHER_STAFF = 99


def appeals_for(who: dict) -> list[dict]:
    """Every status, escalation flag, owner and claim situation, as seen by `who`."""
    me = who.get("id", 21)
    ids = {None: None, "me": me, "other": OTHER_STAFF}
    return [
        {"status": status, "senior_only": senior_only, "owner": owner, "holder": ids[holder], "claim_age": age,
         "approver": ids[approver]}
        for status in table.STATUSES
        for senior_only in (False, True)
        for owner in (OWNER_ID, STRANGER_ID)
        for holder, age, approver in CLAIMS
    ]


HOLDERS = (None, 21, 22, 23, 24, OTHER_STAFF)


def test_the_action_table_is_the_specification():
    """Exactly the actions of the spec exist, each with the minimum role the spec names."""
    owner_actions = {a for a, who in ACTIONS.items() if who == "owner"}
    staff_actions = {a: who for a, who in ACTIONS.items() if who in RANK}
    assert policy.OWNER_ACTIONS == owner_actions
    assert policy.STAFF_ACTIONS == staff_actions


@pytest.mark.parametrize("name", PRINCIPALS)
def test_every_action_without_an_appeal_as_the_model_says(name):
    who = PRINCIPALS[name]
    for action in (*ACTIONS, UNKNOWN):
        assert outcome(who, action, None) == model(who, action, None), (name, action)


@pytest.mark.parametrize("name", PRINCIPALS)
def test_every_action_on_every_appeal_as_the_model_says(name):
    """Every status, escalation flag, owner, claim holder and age, approver: the policy agrees with the model."""
    who = PRINCIPALS[name]
    for action, appeal in itertools.product((*ACTIONS, UNKNOWN), appeals_for(who)):
        assert outcome(who, action, appeal) == model(who, action, appeal), (name, action, appeal)


@hsettings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(PRINCIPALS)),
    action=st.sampled_from((*ACTIONS, UNKNOWN)),
    status=st.sampled_from(table.STATUSES),
    senior_only=st.booleans(),
    owner=st.sampled_from((OWNER_ID, STRANGER_ID)),
    holder=st.sampled_from(HOLDERS),
    claim_age=st.one_of(st.none(), st.integers(-10, 3 * IDLE)),
    approver=st.sampled_from(HOLDERS),
)
def test_random_claims_as_the_model_says(name, action, status, senior_only, owner, holder, claim_age, approver):
    appeal = {"status": status, "senior_only": senior_only, "owner": owner, "holder": holder,
              "claim_age": claim_age, "approver": approver}
    who = PRINCIPALS[name]
    assert outcome(who, action, appeal) == model(who, action, appeal)


@hsettings(max_examples=200, deadline=None)
@given(status=st.sampled_from(["approved", "pending", "rejected", "revoked"]),
       expires=st.one_of(st.none(), st.integers(-10**6, 10**6)))
def test_a_researcher_grant_is_current_until_it_expires(status, expires):
    """Approved and not yet expired (the expiry instant itself is expired), nothing else."""
    who = {"kind": "researcher", "status": status, "expires": expires,
           "granted": status == "approved" and (expires is None or expires > 0)}
    assert policy.researcher_has_access(principal(who)) is who["granted"]
    assert outcome(who, "dataset.download_unhashed", None) == model(who, "dataset.download_unhashed", None)


def test_a_claim_is_live_until_the_idle_time_has_passed():
    """Touched 0 .. IDLE-1 minutes ago (or in the future: clock skew): live; IDLE or more, or never: not."""
    for age, live in ((None, False), (-1, True), (0, True), (IDLE - 1, True), (IDLE, False), (IDLE + 1, False)):
        appeal = appeal_object({"status": "in_review", "senior_only": False, "owner": OWNER_ID, "holder": 21,
                                "claim_age": age, "approver": None})
        assert policy.claim_is_live(appeal) is live, age
        assert policy.holds_claim(principal(PRINCIPALS["reviewer"]), appeal) is live, age
        assert policy.holds_claim(principal(PRINCIPALS["senior"]), appeal) is False
    unclaimed = Appeal(assigned_to_id=None, claim_touched_at=NOW)
    assert policy.claim_is_live(unclaimed) is False


def test_escalated_means_the_status_or_the_lasting_flag():
    for status in table.STATUSES:
        for flag in (False, True, None):
            expected = status == "escalated" or bool(flag)
            assert policy.is_escalated(Appeal(status=status, senior_only=flag)) is expected, (status, flag)
    # An appeal object without the flag (an older row shape): only its status counts.
    assert policy.is_escalated(SimpleNamespace(status="in_review")) is False
    assert policy.is_escalated(SimpleNamespace(status="escalated")) is True
