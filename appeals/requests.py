"""The request layer shared by pages, API and services: version fields, free text, timestamps.

No Flask here: the owner and reviewer pages, the JSON API and the public pages parse
with these functions, and the services that validate text call `text` too, so each
rule has one behaviour whichever channel a request comes through.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from appeals import i18n
from appeals.i18n import gettext as _
from appeals.services.errors import Invalid

# The one limit of free text a person writes (statements, replies, messages, notes, reasons).
# It was 5,000 on the owner side and 20,000 on the reviewer side; the stricter one holds.
TEXT_MAX = 5000

VERSION_MESSAGE = i18n.lazy_gettext("The version of the appeal you loaded is not valid. Reload the page and try again.")


# --- whole numbers: versions, ids, page numbers -------------------------------------------------

# The most digits a whole number may have: int() never meets a string long enough to be slow or
# past Python's 4,300-digit limit.
NUMBER_DIGITS_MAX = 18
# The largest whole number a request may carry: ids, versions and counts are SQL INTEGER columns
# (PostgreSQL's int4), and a larger value in a query is a database error (a 500), not a miss.
NUMBER_MAX = 2**31 - 1


def number_problem(value: Any, *, text: bool,
                   bounds: tuple[int, int] | None = None) -> tuple[int | None, str | None]:
    """(the number or None, the problem or None) of an optional whole number.

    `text`: it comes from a form or a query string (ASCII digits, blanks around them
    ignored); otherwise from JSON (an integer, never a string or a boolean). Absent or
    blank is None, not a problem. At most NUMBER_DIGITS_MAX digits either way; from 1 to
    NUMBER_MAX, or within `bounds` (low, high) inclusive when given.
    """
    if value is None or (text and isinstance(value, str) and not value.strip()):
        return None, None
    if text:
        raw = value.strip() if isinstance(value, str) else ""
        found = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= NUMBER_DIGITS_MAX else None
    else:
        found = value if isinstance(value, int) and not isinstance(value, bool) else None
    low, high = bounds or (1, NUMBER_MAX)
    if found is None or not low <= found <= high:
        if bounds:
            # Bounds are for the staff's filters (queue, audit), which speak English only.
            return None, f"A whole number from {low} to {high}."
        return None, _("Must be a positive whole number.")
    return found, None


def number(value: Any, field: str, *, text: bool, bounds: tuple[int, int] | None = None) -> int | None:
    """The optional whole number of `field` (see `number_problem`); Invalid naming the field otherwise."""
    cleaned, problem = number_problem(value, text=text, bounds=bounds)
    if problem:
        raise Invalid(problem, fields={field: problem})
    return cleaned


# --- the appeal version a caller saw (optimistic concurrency) ----------------------------------


def form_version(form) -> int | None:
    """The optional appeal `version` of a submitted form; bad input is a 422 naming the field."""
    return _version(form.get("version"), text=True)


def json_version(data: dict) -> int | None:
    """The optional appeal `version` of a JSON body; bad input is a 422 naming the field."""
    return _version(data.get("version"), text=False)


def _version(value: Any, text: bool) -> int | None:
    number, problem = number_problem(value, text=text)
    if problem:
        # The field is hidden in forms: its message says what to do, on pages and in the API alike.
        raise Invalid(str(VERSION_MESSAGE), fields={"version": str(VERSION_MESSAGE)})
    return number


# --- free text --------------------------------------------------------------------------------


def text_problem(value: Any, label: str, required: bool) -> tuple[str | None, str | None]:
    """(the cleaned text or None, the problem or None) for text a person wrote.

    Line ends are normalised to LF first (browsers send CR LF; each counts as one
    character, as the page's counter does), then the text is stripped. NUL is
    refused everywhere: PostgreSQL cannot store it. At most TEXT_MAX characters.
    """
    if value is None:
        value = ""
    if not isinstance(value, str):
        return None, _("%(field)s must be text.", field=label)
    value = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if "\x00" in value:
        return None, _("%(field)s contains a character that cannot be stored (NUL).", field=label)
    if not value:
        return None, (_("%(field)s is required.", field=label) if required else None)
    if len(value) > TEXT_MAX:
        return None, _("%(field)s can have at most %(max)s characters; it has %(count)s.", field=label,
                       max=i18n.format_number(TEXT_MAX), count=i18n.format_number(len(value)))
    return value, None


def text(value: Any, field: str, label: str, required: bool = True) -> str | None:
    """The cleaned text of `field` (see `text_problem`); Invalid naming the field otherwise."""
    cleaned, problem = text_problem(value, label, required)
    if problem:
        raise Invalid(problem, fields={field: problem})
    return cleaned


# --- timestamps --------------------------------------------------------------------------------


def iso(value: datetime | date | None) -> str | None:
    """A naive-UTC timestamp as ISO 8601 with a `Z`; a date as YYYY-MM-DD; None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat() + "Z"
    return value.isoformat()


def day(value: Any) -> date | None:
    """The date of a YYYY-MM-DD string (blanks around it ignored); None for anything else.

    date.fromisoformat also reads 20190331, 2019-W13-7 and years before 1000; only the
    dashed form with a four-figure year is unambiguous enough for a person or a client.
    """
    raw = value.strip() if isinstance(value, str) else ""
    if len(raw) != 10 or not raw.isascii() or raw[4] != "-" or raw[7] != "-":
        return None
    try:
        found = date.fromisoformat(raw)
    except ValueError:
        return None
    return found if found.year >= 1000 else None


def parse_iso(value: str) -> datetime:
    """The naive-UTC datetime of a timestamp written by `iso`."""
    return datetime.fromisoformat(value[:-1] if value.endswith("Z") else value)
