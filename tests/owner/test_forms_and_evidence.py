"""Issue 15 on the owner's side: three-part dates, ordered error summaries, evidence uploads, honest status, help."""

from __future__ import annotations

import io
import re
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

# The machine is shared: generation may be slow, never the property.
RELAXED = hsettings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
from PIL import Image
from sqlalchemy import func, select

from appeals import db, runtime
from appeals.models import Appeal, Attachment
from appeals.services import evidence
from appeals.services.filing import parse_date_parts
from tests.owner.conftest import GOOD_APPEAL, csrf_from, file_for, move, staff_session, web_login


def _text(response) -> str:
    return response.get_data(as_text=True)


# --- dates -----------------------------------------------------------------------------------


@RELAXED
@given(st.dates(min_value=date(1000, 1, 1), max_value=date(9999, 12, 31)), st.booleans())
def test_three_parts_read_back_as_the_same_date(day, padded):
    fmt = "{:02d}" if padded else "{}"
    assert parse_date_parts(fmt.format(day.day), fmt.format(day.month), str(day.year), "Date") == (day, None)


@RELAXED
@given(st.integers(min_value=0, max_value=999_999).filter(lambda y: len(str(y)) != 4))
def test_a_year_without_four_digits_is_never_a_date(year):
    value, problem = parse_date_parts("31", "3", str(year), "Date you lost control")
    assert value is None and "4 numbers" in problem


@pytest.mark.parametrize("parts, expected", [
    (("31", "3", ""), "Date you lost control must include a year"),
    (("", "", "2019"), "Date you lost control must include a day and a month"),
    (("2019-03-31", "", ""), "must include a month and a year"),
    (("31", "2", "2019"), "that month has no day 31"),
    (("1", "13", "2019"), "month must be a number from 1 to 12"),
    (("1", "x", "2019"), "must be a real date"),
])
def test_date_errors_name_the_part_that_is_wrong(parts, expected):
    value, problem = parse_date_parts(*parts, label="Date you lost control")
    assert value is None and expected in problem


def _form(**overrides) -> dict:
    form = {**GOOD_APPEAL, "reason": "compromised", "statement": "Someone took my account.",
            "compromised_from_day": "31", "compromised_from_month": "3", "compromised_from_year": "2019",
            "compromised_until_day": "2", "compromised_until_month": "5", "compromised_until_year": "2019"}
    form.update(overrides)
    return form


def test_compromised_dates_in_three_fields_are_stored_exactly(client, owner_a):
    web_login(client, owner_a.screen_name)
    response = client.post("/appeals/new", data={"csrf_token": csrf_from(client, "/appeals/new"), **_form()})
    assert response.status_code == 303
    appeal = db.session.scalars(select(Appeal)).one()
    assert (appeal.compromised_from, appeal.compromised_until) == (date(2019, 3, 31), date(2019, 5, 2))


def test_the_hinted_iso_form_typed_into_one_field_is_refused_and_kept(client, owner_a):
    web_login(client, owner_a.screen_name)
    response = client.post("/appeals/new", data={"csrf_token": csrf_from(client, "/appeals/new"),
                                                 **_form(compromised_from_day="2019-03-31", compromised_from_month="",
                                                         compromised_from_year="")})
    assert response.status_code == 422
    page = _text(response)
    assert "must include a month and a year" in page and 'value="2019-03-31"' in page
    assert db.session.scalar(select(func.count()).select_from(Appeal)) == 0


def test_the_api_still_takes_iso_dates_and_refuses_compact_ones(owner_a):
    from appeals.services.errors import Invalid

    with pytest.raises(Invalid) as refused:
        file_for(owner_a, reason="compromised", compromised_from="20190331", compromised_until="2019-05-02")
    assert "compromised_from" in refused.value.fields
    appeal = file_for(owner_a, reason="compromised", compromised_from="2019-03-31", compromised_until="2019-05-02")
    assert appeal.compromised_from == date(2019, 3, 31)


# --- evidence --------------------------------------------------------------------------------


def _png(gps: bool = False) -> bytes:
    image = Image.new("RGB", (40, 30), (200, 30, 30))
    out = io.BytesIO()
    if gps:
        exif = Image.Exif()
        exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}  # GPSInfo
        exif[0x010F] = "SpyCam Inc"  # Make
        image.save(out, "JPEG", exif=exif.tobytes())
    else:
        image.save(out, "PNG")
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _post_with_files(client, files, **overrides):
    data = {"csrf_token": csrf_from(client, "/appeals/new"), **_form(**overrides)}
    data["evidence"] = [(io.BytesIO(content), name) for name, content in files]
    return client.post("/appeals/new", data=data, content_type="multipart/form-data")


@pytest.mark.parametrize("files, expected", [
    ([("setup.png", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\xff\xff")], "is not a PNG, JPEG, PDF or plain text file"),
    ([("scan.png", PDF)], "is a PDF document, but its name ends in .png"),
    ([("big.txt", b"a" * (10 * 1024 * 1024 + 1))], "larger than 10 MB"),
    ([(f"note{i}.txt", b"hello") for i in range(6)], "at most 5 files; you chose 6"),
    ([("broken.jpg", b"\xff\xd8\xff\xe0garbage")], "cannot be read"),
])
def test_bad_uploads_are_refused_clearly_and_nothing_is_kept(client, owner_a, files, expected):
    web_login(client, owner_a.screen_name)
    blobs = runtime.engine().store.blobs.root
    before = sorted(p.name for p in blobs.rglob("*") if p.is_file())
    response = _post_with_files(client, files)
    assert response.status_code == 422
    page = _text(response)
    assert expected in page and 'href="#f-evidence"' in page
    assert "Someone took my account." in page  # what was typed is still there
    assert db.session.scalar(select(func.count()).select_from(Appeal)) == 0
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert sorted(p.name for p in blobs.rglob("*") if p.is_file()) == before


def test_evidence_is_stored_clean_and_only_its_owner_and_reviewers_reach_it(app, client, owner_a, owner_b, make_staff):
    web_login(client, owner_a.screen_name)
    response = _post_with_files(client, [("photo.jpg", _png(gps=True)), ("mail.eml", "Subject: reset\n\nHi ✓".encode()),
                                         ("letter.pdf", PDF)])
    assert response.status_code == 303, _text(response)[:2000]
    appeal = db.session.scalars(select(Appeal)).one()
    rows = db.session.scalars(select(Attachment).order_by(Attachment.id)).all()
    assert [(a.filename, a.media_type) for a in rows] == [
        ("photo.jpg", "image/jpeg"), ("mail.eml", "text/plain"), ("letter.pdf", "application/pdf")]

    page = _text(client.get(f"/appeals/{appeal.id}"))
    url = f"/appeals/{appeal.id}/files/{rows[0].id}"
    assert url in page
    download = client.get(url)
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    with Image.open(io.BytesIO(download.data)) as image:
        exif = image.getexif()
        assert not exif.get_ifd(0x8825) and 0x010F not in exif  # no GPS, no camera
        assert image.size == (40, 30)
    assert b"GPS" not in download.data and b"SpyCam" not in download.data
    text = client.get(f"/appeals/{appeal.id}/files/{rows[1].id}")
    assert text.headers["Content-Type"].startswith("text/plain") and "✓" in text.get_data(as_text=True)

    other = app.test_client()
    web_login(other, owner_b.screen_name)
    assert other.get(url).status_code == 404
    assert other.get(f"/appeals/{appeal.id}/status.json").status_code == 404
    assert app.test_client().get(url).status_code in (302, 401)  # anonymous: log in first, never the file

    reviewer = make_staff("eve@review.example", "reviewer")
    staff_client = app.test_client()
    staff_session(app, staff_client, reviewer)
    assert staff_client.get(f"/review/appeals/{appeal.id}/files/{rows[2].id}").data == PDF


def test_a_reply_carries_files(client, owner_a):
    appeal = file_for(owner_a)
    move(appeal.id, "in_review", "info_requested")
    web_login(client, owner_a.screen_name)
    version = db.session.get(Appeal, appeal.id).version
    response = client.post(f"/appeals/{appeal.id}/reply", content_type="multipart/form-data", data={
        "csrf_token": csrf_from(client, f"/appeals/{appeal.id}"), "version": str(version),
        "body": "Here is the reset email.", "evidence": [(io.BytesIO(_png()), "reset.png")]})
    assert response.status_code == 303
    row = db.session.scalars(select(Attachment)).one()
    assert row.message_id is not None and row.media_type == "image/png"


def test_check_accepts_a_file_without_an_ending_and_names_it():
    checked, problem = evidence.check([evidence.Upload("screenshot", _png())])
    assert problem is None and checked[0].filename == "screenshot.png"


# --- honest status ---------------------------------------------------------------------------


def test_an_approval_is_shown_as_not_final_and_a_send_back_as_returned(client, owner_a):
    appeal = file_for(owner_a)
    move(appeal.id, "in_review", "approved")
    web_login(client, owner_a.screen_name)
    page = _text(client.get(f"/appeals/{appeal.id}"))
    assert "Not final yet" in page and "waiting for a second reviewer (not final)" in page
    assert "data-poll-url" in page
    move(appeal.id, "in_review")
    page = _text(client.get(f"/appeals/{appeal.id}"))
    assert page.count("Returned for more review") == 2  # the status and its timeline entry
    assert "It is not denied" in page


def test_the_question_is_shown_once(client, owner_a):
    appeal = file_for(owner_a)
    move(appeal.id, "in_review", "info_requested")
    web_login(client, owner_a.screen_name)
    page = _text(client.get(f"/appeals/{appeal.id}"))
    assert page.count("Which shop do you run?") == 1


def test_after_a_correction_pages_say_what_was_done_and_what_remains(client, owner_a):
    appeal = file_for(owner_a)
    appeal.decision_remedy = "remove"
    db.session.commit()
    move(appeal.id, "in_review", "approved", "correction_queued", "correcting")
    releases = {d.dataset: d.version + 1 for d in db.session.get(Appeal, appeal.id).datasets}
    move(appeal.id, "corrected", data={"releases": releases, "remedy": "remove"})
    stored = db.session.get(Appeal, appeal.id)
    referring = sum(d.referring_rows for d in stored.datasets)
    web_login(client, owner_a.screen_name)
    for path in (f"/appeals/{appeal.id}", "/me"):
        page = _text(client.get(path))
        assert "was removed from" in page or "were removed" in page
        if referring:
            assert (f"{referring:,} tweet{'s' if referring != 1 else ''} by other accounts still mention"
                    in page.replace("mentions", "mention"))
            assert "with your id replaced by a pseudonym that cannot be linked to you" in page
        for name, version in releases.items():
            assert f"/datasets/{name}/releases/{version}" in page
    assert "will be removed" not in _text(client.get(f"/appeals/{appeal.id}"))


def test_status_json_follows_the_appeal(client, owner_a):
    appeal = file_for(owner_a)
    move(appeal.id, "in_review", "approved", "correction_queued")
    web_login(client, owner_a.screen_name)
    first = client.get(f"/appeals/{appeal.id}/status.json").get_json()
    assert first["status"] == "correction_queued" and first["polling"] is True and first["final"] is False
    move(appeal.id, "correcting")
    second = client.get(f"/appeals/{appeal.id}/status.json").get_json()
    assert second["version"] != first["version"] and second["status_title"]


# --- help ------------------------------------------------------------------------------------


def test_help_names_the_contact_and_every_footer_links_it(app, client, owner_a):
    from dataclasses import replace

    runtime.bootstrap(replace(runtime.settings(), contact_email="people@appeals.example"))
    page = _text(client.get("/help"))
    assert "mailto:people@appeals.example" in page and "14 days" in page
    for path in ("/", "/datasets", "/login", "/review/login", "/no-such-page"):
        assert 'href="/help"' in _text(client.get(path)), path
