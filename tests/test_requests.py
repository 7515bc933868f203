"""The request layer's rules, one behaviour for every channel: versions, free text, timestamps."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appeals import requests
from appeals.services.errors import Invalid


@given(st.integers(min_value=1, max_value=requests.NUMBER_MAX))
def test_a_version_is_read_the_same_from_a_form_and_from_json(number):
    assert requests.form_version({"version": f" {number} "}) == number
    assert requests.json_version({"version": number}) == number


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_an_absent_version_checks_nothing(raw):
    assert requests.form_version({"version": raw}) is None
    assert requests.form_version({}) is None and requests.json_version({}) is None


@given(st.one_of(
    st.text().filter(lambda s: s.strip() and not (s.strip().isascii() and s.strip().isdigit())),
    st.sampled_from(["0", "-1", "1.0", "١٢", "1e3", "0x10"]),
))
def test_a_bad_form_version_is_a_422_naming_the_field(raw):
    with pytest.raises(Invalid) as refused:
        requests.form_version({"version": raw})
    assert refused.value.status == 422 and set(refused.value.fields) == {"version"}


@pytest.mark.parametrize("value", ["1", "one", True, False, 1.0, 0, -3, [1], {"v": 1}])
def test_a_bad_json_version_is_a_422_naming_the_field(value):
    with pytest.raises(Invalid) as refused:
        requests.json_version({"version": value})
    assert refused.value.status == 422 and set(refused.value.fields) == {"version"}


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**6),
       st.integers(min_value=-10, max_value=2 * 10**6), st.booleans())
def test_a_number_within_its_bounds_is_read_and_any_other_is_a_problem(low, span, value, text):
    high = low + span
    number, problem = requests.number_problem(str(value) if text else value, text=text, bounds=(low, high))
    if low <= value <= high:
        assert (number, problem) == (value, None)
    else:
        assert number is None and problem == f"A whole number from {low} to {high}."


@pytest.mark.parametrize("text", [True, False])
def test_a_number_is_at_most_what_an_sql_integer_holds(text):
    largest = 2**31 - 1  # PostgreSQL's int4: ids, versions
    assert requests.number_problem(str(largest) if text else largest, text=text) == (largest, None)
    for past in (largest + 1, 10**18 - 1, 10**18):
        number, problem = requests.number_problem(str(past) if text else past, text=text)
        assert number is None and problem
    # Past Python's 4,300-digit limit int() would raise: the digit count refuses it first.
    assert requests.number_problem("9" * 5000, text=True)[0] is None


def test_a_bad_number_is_a_422_naming_its_field():
    with pytest.raises(Invalid) as refused:
        requests.number("x1", "template_id", text=True)
    assert refused.value.status == 422 and set(refused.value.fields) == {"template_id"}
    assert requests.number(" 7 ", "template_id", text=True) == 7 and requests.number("", "t", text=True) is None


@given(st.text(alphabet=st.characters(blacklist_characters="\x00\r", blacklist_categories=("Cs",)),
               min_size=1, max_size=200))
def test_text_keeps_what_was_written_but_the_surrounding_blanks(body):
    cleaned, problem = requests.text_problem(body, "Your reply", required=False)
    assert problem is None and cleaned == (body.strip() or None)


def test_browser_line_ends_count_once_up_to_the_one_limit():
    at_limit = ("ab\r\n" * (requests.TEXT_MAX // 3))[: requests.TEXT_MAX]
    assert requests.text(at_limit + "\r\n" * 20, "body", "Your reply") == at_limit.replace("\r\n", "\n").strip()
    with pytest.raises(Invalid) as refused:
        requests.text("x" * (requests.TEXT_MAX + 1), "statement", "The statement")
    assert refused.value.fields == {"statement": "The statement can have at most 5,000 characters; it has 5,001."}


@pytest.mark.parametrize("value, problem", [
    ("a\x00b", "Your reply contains a character that cannot be stored (NUL)."),
    ("  \r\n ", "Your reply is required."),
    (None, "Your reply is required."),
    (42, "Your reply must be text."),
])
def test_text_refusals(value, problem):
    with pytest.raises(Invalid) as refused:
        requests.text(value, "body", "Your reply")
    assert refused.value.status == 422 and refused.value.fields == {"body": problem}
    assert requests.text_problem("", "Your reply", required=False) == (None, None)


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)))
def test_timestamps_are_iso_utc_with_a_z_and_read_back(moment):
    written = requests.iso(moment)
    assert written.endswith("Z") and requests.parse_iso(written) == moment


def test_dates_and_nothing():
    assert requests.iso(date(2019, 3, 31)) == "2019-03-31"
    assert requests.iso(None) is None


@given(st.dates(min_value=date(1000, 1, 1)))
def test_a_day_reads_back_what_iso_writes(day):
    assert requests.day(f" {requests.iso(day)} ") == day


@pytest.mark.parametrize("raw", ["20190331", "2019-W13-7", "2019-090", "0999-03-31", "2019-02-30", "2019-3-31 ",
                                 "\uff12019-03-31", "2019-03-31T00", "", None, 20190331])
def test_only_the_dashed_day_with_a_four_figure_year_is_a_day(raw):
    assert requests.day(raw) is None
