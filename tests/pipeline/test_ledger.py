"""The ledger of standing decisions: recorded by every confirmed correction, obeyed by every later import."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from sqlalchemy import select

from appeals import db, runtime
from appeals.models import AuditEntry, Staff, StandingDecision
from appeals.services import corrections
from appeals.services.audit import Actor
from appeals.services.errors import Forbidden, Invalid, NotFound
from tests.engine.conftest import make_alpha, make_beta, make_gamma
from tests.owner.conftest import staff_session, web_login
from tests.pipeline.conftest import actor_of, current_versions, run_cli
from tests.public.conftest import post_form
from workers import imports, jobs
from workers.engine import faults
from workers.engine.hashing import pseudonym

OPERATOR = Actor("operator", None, "command line")


def published(name: str, variant: str, filename: str, version: int | None = None) -> bytes:
    engine = runtime.engine()
    v = version or engine.get_dataset(name).current_version
    return engine.file_path(name, v, variant, filename).read_bytes()


def all_files(name: str) -> dict[str, bytes]:
    engine = runtime.engine()
    m = engine.manifest(name)
    return {f"{e['variant']}/{e['path']}": engine.file_path(name, m["version"], e["variant"], e["path"]).read_bytes()
            for e in m["files"]}


def assert_no_trace(name: str, uid: str = "1000", screen_name: str = "target_x", old=()):
    """No raw id as a whole value, no @handle, no earlier pseudonym anywhere in the current release."""
    for path, data in all_files(name).items():
        text = data.decode("latin-1")
        assert not re.search(rf"(?<![0-9A-Za-z+/]){uid}(?![0-9])", text), path
        assert not re.search(rf"@{screen_name}(?![A-Za-z0-9_])", text, re.I), path
        for p in old:
            assert p not in text, path


def key() -> bytes:
    return runtime.settings().hash_key


@pytest.fixture
def target(make_account):
    """The account 1000 (@Target_X) in the platform directory; call it for a session-bound copy."""
    make_account("1000", "Target_X")
    from appeals.models import Account

    return lambda: db.session.scalar(select(Account).where(Account.user_id == "1000"))


def test_a_confirmed_correction_stands_for_datasets_imported_later(tmp_path, target, approve, confirm, drain, staff,
                                                                   fast):
    """Correct, then import a dataset holding the account as author and one only referring to it:
    both release 1s are corrected, byte for byte as import-then-correct would publish them."""
    imports.import_dataset(make_beta(tmp_path / "beta"), "beta")
    master = make_alpha(tmp_path / "alpha")
    (tmp_path / "alpha0").mkdir()
    for f in master.iterdir():  # the very same master bytes (zip timestamps included) under another name
        (tmp_path / "alpha0" / f.name.replace("alpha", "alpha0")).write_bytes(f.read_bytes())
    imports.import_dataset(tmp_path / "alpha0", "alpha0")
    confirm(approve(target(), "rehash"))
    drain()
    [d] = db.session.scalars(select(StandingDecision)).all()
    assert (d.user_id, d.remedy, d.epoch, d.standing) == ("1000", "rehash", 1, True)
    assert d.appeal_id is not None and d.confirmed_by_id == staff["senior"].id and d.operator is None
    assert "target_x" in d.screen_names
    p0, p1 = pseudonym(key(), "1000", 0), pseudonym(key(), "1000", 1)

    alpha = imports.import_dataset(master, "alpha")
    gamma = imports.import_dataset(make_gamma(tmp_path / "gamma"), "gamma")
    assert alpha.version == gamma.version == 1
    assert alpha.summary["standing_decisions_applied"] == 1 and alpha.summary["accounts_rehashed"] == 1
    for name in ("alpha", "gamma"):
        assert_no_trace(name, old=(p0,))
        assert p1 in published(name, "hashed", f"{name}_tweets_csv_hashed{'_1' if name == 'alpha' else ''}.csv").decode()
    # Release 1 of alpha equals what the correction published for alpha0 (the same master), file by file.
    same = {k.replace("alpha0", "alpha"): v for k, v in all_files("alpha0").items()}
    assert all_files("alpha") == same
    assert runtime.engine().verify("alpha").ok


def test_apply_before_import_records_then_import_obeys_then_nothing_twice(tmp_path, settings):
    """No current release holds the account: the decision is recorded and said so; the import obeys it;
    the same command afterwards publishes nothing and says so."""
    imports.import_dataset(make_beta(tmp_path / "beta"), "beta")
    first = jobs.operator_apply([["1000", "remove"]], "court order 7", OPERATOR)
    assert first["releases"] == {} and first["recorded"] == ["1000"]
    assert [n[0] for n in first["noop"]] == ["1000"]
    [d] = db.session.scalars(select(StandingDecision)).all()
    assert (d.remedy, d.epoch, d.operator, d.reason, d.appeal_id) == ("remove", 1, "command line", "court order 7", None)

    imports.import_dataset(make_alpha(tmp_path / "alpha"), "alpha")
    assert_no_trace("alpha")
    v1 = runtime.engine().get_dataset("alpha").versions[0]
    assert v1.accounts == 4 and v1.summary["accounts_removed"] == 1  # the removed account left
    assert pseudonym(key(), "1000", 1) in published("alpha", "unhashed", "alpha_tweets_csv_unhashed_1.csv").decode()

    before = current_versions()
    again = jobs.operator_apply([["1000", "remove"]], "court order 7", OPERATOR)
    assert again["run"] is None and again["already_standing"] == ["1000"] and again["releases"] == {}
    assert current_versions() == before
    assert db.session.query(StandingDecision).count() == 1


def test_a_retry_after_a_crash_before_recording_publishes_once(tmp_path, settings):
    """The engine published, the process died before the ledger was written: the same command publishes
    nothing more and records the decision once."""
    imports.import_dataset(make_alpha(tmp_path / "alpha"), "alpha")

    class Crash(BaseException):
        pass

    def hook(name):
        if name == "before_commit":
            raise Crash(name)

    faults.test_hook = hook
    try:
        with pytest.raises(Crash):
            jobs.operator_apply([["1000", "rehash"]], "x", OPERATOR)
    finally:
        faults.test_hook = None
        db.session.remove()
    assert current_versions() == {"alpha": 2}
    assert db.session.query(StandingDecision).count() == 0
    out = jobs.operator_apply([["1000", "rehash"]], "x", OPERATOR)
    assert out["already_applied"] and current_versions() == {"alpha": 2}
    [d] = db.session.scalars(select(StandingDecision)).all()
    assert d.epoch == 1


def test_revoke_then_import_publishes_by_the_ordinary_rules_and_is_audited(tmp_path, settings, make_staff, app,
                                                                            client):
    """Only an admin may revoke; the revocation is audited and changes future imports only."""
    imports.import_dataset(make_alpha(tmp_path / "alpha"), "alpha")
    jobs.operator_apply([["1000", "remove"]], "mistake", OPERATOR)
    alpha_v2 = all_files("alpha")
    senior = make_staff("senior@example.org", "senior")
    admin = make_staff("admin@example.org", "admin")
    with pytest.raises(Forbidden):
        corrections.revoke_decision("1000", "why", actor_of(senior))
    with pytest.raises(Invalid):
        corrections.revoke_decision("1000", " ", actor_of(admin))
    with pytest.raises(NotFound):
        corrections.revoke_decision("999", "why", actor_of(admin))

    staff_session(app, client, db.session.get(Staff, admin.id))
    page = client.get("/admin/ledger")
    assert page.status_code == 200 and b"1000" in page.data and b"mistake" in page.data
    res = post_form(client, "/admin/ledger/1000/revoke", {"reason": "the court order was quashed"},
                    form_url="/admin/ledger")
    assert res.status_code == 302
    db.session.remove()
    [d] = db.session.scalars(select(StandingDecision)).all()
    assert not d.standing and d.revoked_by == "admin@example.org"
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "decision.revoke"))
    assert entry.actor_id == admin.id and entry.after["reason"] == "the court order was quashed"

    assert all_files("alpha") == alpha_v2  # nothing published changes back
    imports.import_dataset(make_gamma(tmp_path / "gamma"), "gamma")
    text = published("gamma", "unhashed", "gamma_tweets_csv_unhashed.csv").decode()
    assert "[1000]" in text and "@Target_X" in text  # the ordinary rules: the master as it is
    # A new correction finds the raw id again, beside the pseudonym the old release holds.
    out = jobs.operator_apply([["1000", "remove"]], "again", OPERATOR)
    # It moves to a new epoch: alpha's references to the old pseudonym follow (one current pseudonym).
    assert out["releases"] == {"alpha": 3, "gamma": 2}
    for name in ("alpha", "gamma"):
        assert_no_trace(name, old=(pseudonym(key(), "1000", 1),))


def test_ledger_page_is_for_admins_only(settings, make_staff, app, client):
    reviewer = make_staff("rev@example.org", "senior")
    staff_session(app, client, reviewer)
    assert client.get("/admin/ledger").status_code == 403


def test_owner_page_says_the_decision_stands_for_future_releases(tmp_path, target, client):
    imports.import_dataset(make_alpha(tmp_path / "alpha"), "alpha")
    web_login(client, "Target_X")
    assert b"stands for future releases too" not in client.get("/me").data
    jobs.operator_apply([["1000", "rehash"]], "x", OPERATOR)
    page = client.get("/me")
    assert b"stands for future releases too" in page.data and b"re-hashed in" in page.data


def test_ledger_and_revoke_commands(tmp_path, settings, worker_env):
    imports.import_dataset(make_alpha(tmp_path / "alpha"), "alpha")
    jobs.operator_apply([["1000", "rehash"]], "court order 9", OPERATOR)
    listed = run_cli(worker_env, "corrections", "ledger", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["user_id"] == "1000" and row["status"] == "standing" and row["decided_by"]["reason"] == "court order 9"
    assert run_cli(worker_env, "corrections", "revoke", "1000").returncode == 2
    done = run_cli(worker_env, "corrections", "revoke", "1000", "--reason", "appeal reopened")
    assert done.returncode == 0 and "revoked" in done.stdout
    text = run_cli(worker_env, "corrections", "ledger").stdout
    assert "revoked" in text and "appeal reopened" in text
    db.session.remove()
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "decision.revoke"))
    assert entry.actor_kind == "operator"


@pytest.mark.parametrize("first", ["import", "correction"])
def test_an_import_racing_a_correction_run(tmp_path, first, target, approve, confirm, drain, fast):
    """Whichever takes the dataset lock first, the new dataset ends up corrected: a decision committed
    before the import holds the lock is applied by it; one committed later is applied by the run after it."""
    imports.import_dataset(make_beta(tmp_path / "beta"), "beta")
    imports.import_dataset(make_gamma(tmp_path / "gamma"), "gamma")
    appeal = approve(target(), "remove").id
    seen: list[str] = []
    errors: list[BaseException] = []
    holding, go = threading.Event(), threading.Event()

    def do_import():
        try:
            imports.import_dataset(make_alpha(tmp_path / "alpha"), "alpha")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            db.session.remove()

    importer = threading.Thread(target=do_import)

    def hook(name):
        seen.append(name)
        if first == "import" and name == "import_locked":
            holding.set()
            assert go.wait(20)  # hold the lock until the decision is committed
        if first == "correction" and name == "before_rewrite" and not importer.is_alive():
            importer.start()
            time.sleep(1.0)  # the import is now waiting for the lock this run holds

    faults.test_hook = hook
    try:
        if first == "import":
            importer.start()
            assert holding.wait(20)
            confirm(appeal)  # committed while the import holds the lock, before it publishes
            go.set()
            importer.join(30)
            drain()  # the run takes the lock after the import, and corrects the new dataset too
        else:
            confirm(appeal)
            drain()
            importer.join(30)
    finally:
        faults.test_hook = None
    assert not errors, errors
    if first == "import":
        assert seen.index("import_locked") < seen.index("before_rewrite")
        assert current_versions()["alpha"] == 2
    else:
        assert seen.index("before_commit") < seen.index("import_locked")
        assert current_versions()["alpha"] == 1
    for name in ("alpha", "gamma"):
        assert_no_trace(name)


def test_rederive_publishes_a_release_under_the_current_rules_and_tells_downloaders(tmp_path, settings, monkeypatch):
    """A release derived before the @handle rule: `rederive` publishes the next version through the ordinary
    path (the old one withdrawn, its downloaders told), and the hashed variant now pseudonymises @handles."""
    from appeals.models import DownloadLog, DownloadNotice
    from workers.engine import fastimport, importer

    legacy = importer.hash_row
    monkeypatch.setattr(fastimport, "FAST", False)  # the old rule is simulated on the reference path's hash_row
    monkeypatch.setattr(importer, "hash_row", lambda fields, cols, pseudo_of, handle_of=None: legacy(fields, cols, pseudo_of))
    monkeypatch.setattr(importer, "verify_import_file", lambda *a: [])
    imports.import_dataset(make_alpha(tmp_path / "alpha"), "alpha")
    monkeypatch.undo()
    old = published("alpha", "hashed", "alpha_tweets_csv_hashed_1.csv").decode()
    assert re.search(r"@target_x(?![A-Za-z0-9_])", old, re.I)  # the hole this closes: a hashed account's @handle beside its pseudonym
    db.session.add(DownloadLog(email="r@uni.example", dataset="alpha", version=1, variant="hashed",
                               path="alpha_tweets_csv_hashed_1.csv"))
    db.session.commit()

    v = imports.rederive("alpha")
    assert (v.version, v.parent_version, v.status) == (2, 1, "current")
    assert [x.status for x in runtime.engine().get_dataset("alpha").versions] == ["withdrawn", "current"]
    new = published("alpha", "hashed", "alpha_tweets_csv_hashed_1.csv").decode()
    assert not re.search(r"@target_x(?![A-Za-z0-9_])", new, re.I) and f"@{pseudonym(key(), '1000', 0)}" in new
    assert published("alpha", "unhashed", "alpha_users_csv_unhashed.csv", 2) == \
        published("alpha", "unhashed", "alpha_users_csv_unhashed.csv", 1)
    notice = db.session.scalar(select(DownloadNotice))
    assert (notice.email, notice.old_version, notice.new_version) == ("r@uni.example", 1, 2)
    assert runtime.engine().verify("alpha").ok


def test_rederive_keeps_corrected_accounts_as_they_are(tmp_path, settings):
    imports.import_dataset(make_alpha(tmp_path / "alpha"), "alpha")
    jobs.operator_apply([["1000", "rehash"]], "x", OPERATOR)
    before = all_files("alpha")
    imports.rederive("alpha")
    assert current_versions() == {"alpha": 3}
    assert all_files("alpha") == before  # already under the current rules: the same bytes again


def test_a_failed_import_verification_publishes_nothing(tmp_path, settings, monkeypatch):
    """With the hashing rule broken (references left raw), the pass before release 1 refuses the import."""
    from workers.engine import hashing, importer
    from workers.engine.errors import VerificationFailed

    broken = hashing.REFERENCE_FIELDS
    monkeypatch.setattr(hashing, "REFERENCE_FIELDS", ())
    with pytest.raises(VerificationFailed, match="in_reply_to_userid holds"):
        imports.import_dataset(make_alpha(tmp_path / "alpha"), "alpha")
    assert broken and current_versions() == {}
    assert not any((runtime.settings().data_dir / "staging").iterdir())
    assert importer.hash_row is hashing.hash_row
