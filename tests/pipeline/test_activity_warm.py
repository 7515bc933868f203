"""Issue 15: a worker makes the reviewer's activity summary before the first view, at filing and after every
publication (a correction, an import, a re-derivation), through a real Redis and RQ's SimpleWorker; Redis
being down never breaks filing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from appeals import db, runtime
from appeals.models import Appeal
from appeals.services import activity, filing
from appeals.services.audit import Actor
from tests.conftest import work_in_process
from workers import dispatch as senders, imports, queues

FILING = {"reason": "compromised", "statement": "Someone took over my account in spring 2016.",
          "contact_email": "owner@example.org", "compromised_from": "2016-03-01", "compromised_until": "2016-09-30"}


def file_appeal(account) -> int:
    """File through the filing service, as the owner's form does."""
    return filing.file_appeal(account, Actor("account", account.id, account.screen_name), dict(FILING)).id


def activity_jobs() -> list[str]:
    return senders.activity_queue(queues.connect()).job_ids


def run_activity_worker() -> None:
    """Every job on the activity queue, in this process, as `appeals worker --burst` does."""
    work_in_process([senders.activity_queue(queues.connect())])


def kept(user_id: str) -> set[str]:
    """Names of the account's kept summaries (one per release set)."""
    folder = runtime.settings().activity_cache_dir
    return {p.stem for p in folder.glob(activity._account_key(user_id) + "-*.sqlite3")}


def published_result(job_id: str) -> dict:
    from rq.job import Job

    return Job.fetch(job_id, connection=queues.connect()).return_value()


def expected_key(appeal_id: int) -> str:
    appeal = db.session.get(Appeal, appeal_id)
    key = activity.summary_key(appeal.account.user_id, activity._appeal_datasets(appeal))
    db.session.rollback()
    return key


def test_filing_enqueues_one_job_that_keeps_the_summary_for_the_first_view(app, client, corpus_account, make_staff,
                                                                           monkeypatch):
    from tests.reviewer.conftest import login

    uid = corpus_account.user_id
    appeal_id = file_appeal(corpus_account)
    key = expected_key(appeal_id)
    assert activity_jobs() == [f"activity-{key}"]
    # Asked again (a retry, a double submit) before it ran: the same job id, so one job.
    assert senders.send_warm([appeal_id]) == 0 and activity_jobs() == [f"activity-{key}"]
    assert kept(uid) == set()

    run_activity_worker()
    assert kept(uid) == {key} and activity_jobs() == []
    # Kept already: nothing more is enqueued, and the job itself does nothing costly.
    assert senders.send_warm([appeal_id]) == 0 and activity_jobs() == []
    assert activity.warm(appeal_id)["built"] is False

    # The first view reads what the job kept: the engine's row scan is never called.
    engine = runtime.engine()

    def no_scan(*args, **kwargs):
        raise AssertionError("the first view scanned the releases")

    monkeypatch.setattr(engine, "samples", no_scan)
    login(client, make_staff("rita@review.example", "reviewer"))
    html = client.get(f"/review/appeals/{appeal_id}").get_data(as_text=True)
    assert 'id="activity-chart"' in html and "could not be read" not in html


def test_a_failing_warm_up_never_fails_filing(corpus_account, monkeypatch, caplog):
    """The job's enqueue raising (anything) leaves the appeal filed; the first view then makes the summary."""
    def broken(appeal_ids):
        raise RuntimeError("boom")

    monkeypatch.setattr(activity, "warm_keys", broken)
    appeal_id = file_appeal(corpus_account)
    assert db.session.get(Appeal, appeal_id).status == "filed"
    assert "could not enqueue activity summary jobs" in caplog.text


def test_filing_succeeds_when_redis_is_down(corpus_account, settings, caplog):
    """Redis unreachable at filing: the appeal is filed and nothing is warmed (the view makes it later)."""
    runtime.bootstrap(replace(settings, redis_url="redis://127.0.0.1:9/0"))  # nothing listens on port 9
    try:
        appeal_id = file_appeal(corpus_account)
    finally:
        runtime.bootstrap(settings)
    assert db.session.get(Appeal, appeal_id).status == "filed"
    assert "could not enqueue activity summary jobs" in caplog.text
    assert activity_jobs() == [] and kept(corpus_account.user_id) == set()


def _warmed(corpus_account) -> tuple[int, str]:
    appeal_id = file_appeal(corpus_account)
    run_activity_worker()
    first = expected_key(appeal_id)
    assert kept(corpus_account.user_id) == {first}
    return appeal_id, first


def test_a_rederive_warms_the_open_appeals_for_the_new_release(corpus, corpus_account, fast):
    appeal_id, first = _warmed(corpus_account)
    held = sorted(e.dataset for e in runtime.engine().footprint(corpus_account.user_id))
    imports.rederive(held[0])
    [published] = activity_jobs()  # one job for the publication; it finds the appeals
    run_activity_worker()
    assert published_result(published) == {"appeals": 1, "enqueued": 1}
    second = expected_key(appeal_id)
    assert second != first and second in kept(corpus_account.user_id)


def copy_as(source, name: str, folder):
    """The master CSV files of a synthetic dataset under another dataset name (media left out)."""
    folder.mkdir()
    for path in source.dir.glob("*.csv"):
        (folder / path.name.replace(source.name, name, 1)).write_bytes(path.read_bytes())
    return folder


def test_an_import_warms_the_open_appeals_it_holds(corpus, corpus_account, fast, tmp_path):
    """`appeals datasets import` of a dataset holding the account: its appeal's summary now covers it too."""
    appeal_id, first = _warmed(corpus_account)
    source = next(d for d in corpus if any(e.dataset == d.name for e in runtime.engine().footprint(
        corpus_account.user_id)))
    imports.import_dataset(copy_as(source, "again_2026", tmp_path / "again"), "again_2026")
    run_activity_worker()
    second = expected_key(appeal_id)
    assert second != first and second in kept(corpus_account.user_id)
    appeal = db.session.get(Appeal, appeal_id)
    assert "again_2026" in activity._appeal_datasets(appeal)


def test_an_import_not_holding_the_account_warms_nothing(corpus, corpus_account, fast, tmp_path):
    _warmed(corpus_account)
    holding = {e.dataset for e in runtime.engine().footprint(corpus_account.user_id)}
    other = next((d for d in corpus if d.name not in holding), None)
    if other is None:
        pytest.skip("the corpus account is in every dataset")
    imports.import_dataset(copy_as(other, "elsewhere_2026", tmp_path / "elsewhere"), "elsewhere_2026")
    [published] = activity_jobs()
    run_activity_worker()
    assert published_result(published) == {"appeals": 0, "enqueued": 0}
    assert len(kept(corpus_account.user_id)) == 1


@pytest.fixture
def neighbour(corpus, corpus_account, make_account):
    """Another author of the corpus account's first dataset (so a correction of it touches that dataset)."""
    from tests.conftest import users_of

    row = next(r for r in users_of(corpus[0]) if r["userid"] != corpus_account.user_id
               and any(e.authored_tweets for e in runtime.engine().footprint(r["userid"])))
    return make_account(row["userid"], row["user_screen_name"], email=f"n-{row['user_screen_name']}@example.org")


def test_a_correction_forgets_the_corrected_account_and_warms_the_others(
        corpus, corpus_account, neighbour, approve, confirm, drain, fast):
    """A correction publishes new releases: the corrected account's kept rows go, the open appeals of the
    datasets it touched are warmed for the new releases."""
    appeal_id, first = _warmed(corpus_account)
    other = neighbour.user_id
    activity.Summary.open(other, sorted(e.dataset for e in runtime.engine().footprint(other))).conn.close()
    assert kept(other)

    confirm(approve(neighbour, "rehash"))
    drain()
    assert kept(other) == set()  # forgotten once the correction published
    assert kept(corpus_account.user_id) == {first}  # not yet warmed for the new release
    run_activity_worker()
    second = expected_key(appeal_id)
    assert second != first and second in kept(corpus_account.user_id)


def test_a_publication_warms_the_oldest_open_appeals_first_up_to_its_limit(corpus, corpus_account, neighbour):
    from datetime import timedelta

    from sqlalchemy import update

    older = file_appeal(neighbour)
    newer = file_appeal(corpus_account)
    db.session.execute(update(Appeal).where(Appeal.id == older).values(
        created_at=db.session.get(Appeal, newer).created_at - timedelta(days=1)))
    db.session.commit()
    assert activity.holding([corpus[0].name]) == [older, newer]
    assert activity.holding([corpus[0].name], limit=1) == [older]
