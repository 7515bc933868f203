"""The reviewer's activity chart: for a generated account whose client, language and hours change at a known
date, the server-drawn SVG puts its bars and the shaded window where they belong (asserted on SVG elements)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, example, given, settings as hsettings, strategies as st

from appeals.services import activity
from appeals.services.activity import Window

SVG = "{http://www.w3.org/2000/svg}"
START = date(2019, 3, 4)  # a Monday: the takeover begins here
WINDOW = Window(date(2019, 3, 4), date(2019, 3, 31))


def generated_rows() -> list[dict]:
    """12 weeks of iPhone tweets in English at office hours, then 4 weeks of web tweets in Russian at night."""
    rows = []
    for week in range(-12, 4):
        inside = week >= 0
        for k in range(3 if not inside else 10):
            moment = datetime.combine(START + timedelta(weeks=week, days=k % 7), datetime.min.time()) + timedelta(
                hours=(2 + k % 3) if inside else (9 + k % 8))
            rows.append({"tweetid": f"{week}-{k}", "tweet_time": moment.strftime("%Y-%m-%d %H:%M"),
                         "tweet_client_name": "Twitter Web Client" if inside else "Twitter for iPhone",
                         "tweet_language": "ru" if inside else "en", "tweet_text": "x", "_kind": "authored",
                         "_dataset": "alpha" if week % 2 else "beta"})
    rows.append({"tweetid": "ref", "tweet_time": "2019-03-10 12:00", "_kind": "referring", "_dataset": "alpha"})
    return rows


def render(app, chart, window) -> ET.Element:
    with app.test_request_context():
        macro = app.jinja_env.get_template("reviewer/_activity.html").module.activity
        html = str(macro(chart, window))
    # The macro's SVGs, parsed as XML: every assertion below is on elements, never on pixels.
    svgs = [ET.fromstring(part[: part.index("</svg>") + 6].replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"', 1))
            for part in ("<svg" + p for p in html.split("<svg")[1:])]
    return svgs


def test_bars_and_window_sit_where_the_takeover_is(app):
    chart = activity.build(generated_rows(), WINDOW)
    svgs = render(app, chart, WINDOW)
    main = svgs[0]
    bars = main.findall(f"{SVG}rect[@data-week]")
    assert len(bars) == 16 and chart["weeks"] == 16  # one bar per week with tweets, referring rows not counted
    by_week = {b.get("data-week"): b for b in bars}
    assert by_week["2019-02-25"].get("data-count") == "3" and by_week["2019-03-04"].get("data-count") == "10"
    inside = sorted(b.get("data-week") for b in bars if b.get("data-inside") == "true")
    assert inside == ["2019-03-04", "2019-03-11", "2019-03-18", "2019-03-25"]
    # The burst is taller than anything before it.
    assert float(by_week["2019-03-04"].get("height")) > 3 * float(by_week["2019-02-25"].get("height"))

    shade = main.find(f"{SVG}rect[@class='window']")
    x, width = float(shade.get("x")), float(shade.get("width"))
    first_inside, last_inside = by_week["2019-03-04"], by_week["2019-03-25"]
    assert abs(x - float(first_inside.get("x"))) < 0.01  # the window starts with the first takeover week
    assert abs(x + width - (float(last_inside.get("x")) + chart["plot_width"] / chart["weeks"])) < 0.01
    before = by_week["2019-02-25"]
    assert float(before.get("x")) + float(before.get("width")) <= x  # the week before lies left of it

    clients = {s.get("data-name"): s for s in svgs if s.get("data-series") == "clients"}
    assert set(clients) == {"Twitter for iPhone", "Twitter Web Client"}
    web_weeks = {b.get("data-week") for b in clients["Twitter Web Client"].findall(f"{SVG}rect[@data-week]")}
    iphone_weeks = {b.get("data-week") for b in clients["Twitter for iPhone"].findall(f"{SVG}rect[@data-week]")}
    assert web_weeks == set(inside) and not (iphone_weeks & web_weeks)
    languages = {s.get("data-name") for s in svgs if s.get("data-series") == "languages"}
    assert languages == {"en", "ru"}

    hours = next(s for s in svgs if s.get("id") == "hours-chart")
    during = {int(r.get("data-hour")) for r in hours.findall(f"{SVG}rect[@data-phase='during']") if r.get("data-count") != "0"}
    before_hours = {int(r.get("data-hour")) for r in hours.findall(f"{SVG}rect[@data-phase='before']") if r.get("data-count") != "0"}
    assert during == {2, 3, 4} and before_hours == {9, 10, 11}


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dates(min_value=date(2015, 1, 1), max_value=date(2022, 12, 31)), min_size=1, max_size=60),
       st.dates(min_value=date(2015, 1, 1), max_value=date(2022, 12, 31)), st.integers(0, 200))
# A one-day window on the last day of eight years: narrower than the 1 px minimum, which once pushed it past
# the plot's right edge (found by a developer's run).
@example(days=[date(2015, 1, 1), date(2022, 12, 31)], start=date(2022, 12, 31), length=0)
def test_every_tweet_is_counted_once_and_bars_stay_inside_the_plot(days, start, length):
    window = Window(start, start + timedelta(days=length))
    rows = [{"tweet_time": f"{d.isoformat()} 10:00", "_kind": "authored"} for d in days]
    chart = activity.build(rows, window)
    assert sum(b["count"] for b in chart["bars"]) == len(days)
    assert chart["inside"] == sum(1 for d in days if window.contains(d))
    for b in chart["bars"]:
        assert chart["left"] - 0.01 <= b["x"] and b["x"] + b["width"] <= chart["width"] + 0.01
        assert 0 <= b["height"] <= chart["main_height"] + 0.01
    shade = chart["shade"]
    assert chart["left"] - 0.01 <= shade["x"] and shade["x"] + shade["width"] <= chart["width"] - 8 + 0.01


def test_rows_filter_by_window_kind_and_dataset():
    rows = generated_rows()
    inside = activity.filter_rows(rows, WINDOW, where="inside", per_page=1000)
    assert inside["total"] == 41 and all(r["_inside"] for r in inside["rows"])  # 40 authored + 1 referring
    referring = activity.filter_rows(rows, WINDOW, kind="referring")
    assert [r["tweetid"] for r in referring["rows"]] == ["ref"]
    beta = activity.filter_rows(rows, WINDOW, dataset="beta", where="outside", per_page=5, page=2)
    assert beta["page"] == 2 and len(beta["rows"]) == 5 and all(r["_dataset"] == "beta" for r in beta["rows"])


# --- the kept summary: the same page and chart as the rows it was made from -------------------------


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(["", "inside", "outside"]), kind=st.sampled_from(["", "authored", "referring"]),
       which=st.integers(0, 3), page=st.integers(1, 4), per_page=st.sampled_from([1, 7, 50]),
       start=st.one_of(st.none(), st.dates(min_value=date(2009, 1, 1), max_value=date(2021, 1, 1))),
       length=st.one_of(st.none(), st.integers(0, 900)))
def test_the_kept_summary_shows_what_the_rows_show(corpus, corpus_account, where, kind, which, page, per_page,
                                                   start, length):
    import json

    names = [d.name for d in corpus]
    uid = corpus_account.user_id
    rows = activity.collect(uid, names)
    end = None if length is None else (start or date(2015, 1, 1)) + timedelta(days=length)
    window = Window(start, end)
    dataset = (names + [""])[which]
    summary = activity.Summary.open(uid, names)
    try:
        assert summary.page(window, where, kind, dataset, page, per_page) == \
            activity.filter_rows(rows, window, where, kind, dataset, page, per_page)
        expected = json.loads(json.dumps(activity.build(rows, window)))
        assert summary.chart(window) == expected
        assert summary.chart(window) == expected  # read back from the file the second time
    finally:
        summary.conn.close()
    assert len(list(activity.runtime.settings().activity_cache_dir.glob("*.sqlite3"))) == 1


def test_a_new_release_gets_a_new_summary_and_forget_removes_them(corpus, corpus_account, monkeypatch):
    names = [d.name for d in corpus]
    uid = corpus_account.user_id
    activity.Summary.open(uid, names).conn.close()
    folder = activity.runtime.settings().activity_cache_dir
    first = set(folder.glob("*.sqlite3"))
    engine = activity.runtime.engine()
    real = engine.release_id
    monkeypatch.setattr(engine, "release_id", lambda name: real(name) if name != names[0] else "0" * 64)
    activity.Summary.open(uid, names).conn.close()
    assert len(set(folder.glob("*.sqlite3")) - first) == 1
    activity.forget(uid)
    assert not list(folder.glob("*.sqlite3"))


def test_samples_stop_early_but_return_the_same_rows(corpus, corpus_account):
    engine = activity.runtime.engine()
    for d in corpus:
        full = engine.samples(corpus_account.user_id, d.name, limit=10 ** 6)
        few = engine.samples(corpus_account.user_id, d.name, limit=3)
        for variant in ("hashed", "unhashed"):
            assert few[variant]["profile"] == full[variant]["profile"]
            for kind in ("authored", "referring"):
                assert few[variant][kind] == full[variant][kind][:3]
        assert engine.samples(corpus_account.user_id, d.name, limit=3, variants=("unhashed",)) == \
            {"unhashed": few["unhashed"]}


def test_the_page_draws_the_chart_the_template_draws_and_keeps_it(app, client, corpus, corpus_account, reviewer):
    """The appeal page's chart is the macro's drawing of the account's rows, the first time and when read back."""
    import re

    from tests.reviewer.conftest import login, make_appeal

    appeal = make_appeal(corpus_account, reason="compromised", datasets=[d.name for d in corpus])
    appeal.compromised_from, appeal.compromised_until = date(2016, 1, 1), date(2017, 6, 30)
    from appeals import db

    db.session.commit()
    window = Window(date(2016, 1, 1), date(2017, 6, 30))
    names = sorted(d.name for d in corpus)
    with app.test_request_context():
        macro = app.jinja_env.get_template("reviewer/_activity.html").module.activity
        expected = str(macro(activity.build(activity.collect(corpus_account.user_id, names), window), window))
    login(client, reviewer)

    def section():
        html = client.get(f"/review/appeals/{appeal.id}").get_data(as_text=True)
        return re.search(r'<h2 id="activity-h">.*?</h2>\s*(.*?)\s*</section>', html, re.S).group(1)

    first, second = section(), section()
    assert first == second == expected.strip()
    assert 'id="activity-chart"' in first
