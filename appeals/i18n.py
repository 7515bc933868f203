"""THE language rules: shipped languages, the locale in force, translating and formatting (no Flask).

Pages get the same catalogues through Flask-Babel (appeals.app.register_i18n); services,
emails and workers translate here, in the locale `use_locale` sets or, inside a web
request, the one the web layer resolves (stored choice, then Accept-Language, then English).
"""

from __future__ import annotations

import contextvars
import functools
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Callable

from babel import Locale, dates, numbers, support

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
DEFAULT = "en"

# code -> (name in the language itself, writing direction); English is the source language.
LANGUAGES: dict[str, tuple[str, str]] = {
    "en": ("English", "ltr"),
    "ar": ("العربية", "rtl"),
    "fa": ("فارسی", "rtl"),
    "ru": ("Русский", "ltr"),
    "zh_Hans": ("简体中文", "ltr"),
    "es": ("Español", "ltr"),
    "tr": ("Türkçe", "ltr"),
}

_forced: contextvars.ContextVar[str | None] = contextvars.ContextVar("appeals_locale", default=None)
_resolver: Callable[[], str | None] | None = None


def normalize(code: str | None) -> str | None:
    """A shipped language code for `code` ('fa', 'zh-CN', 'zh_hans', 'es-MX' ...), or None."""
    if not code:
        return None
    raw = code.strip().replace("-", "_")
    lowered = raw.lower()
    for known in LANGUAGES:
        if lowered == known.lower():
            return known
    primary = lowered.split("_", 1)[0]
    if primary == "zh":
        # Only Simplified Chinese ships; Traditional-script tags are still closer to it than English.
        return "zh_Hans"
    return primary if primary in LANGUAGES else None


def direction(code: str | None) -> str:
    """'rtl' or 'ltr' for a language code."""
    return LANGUAGES.get(normalize(code) or DEFAULT, LANGUAGES[DEFAULT])[1]


def html_lang(code: str | None) -> str:
    """The BCP 47 tag for <html lang>: 'zh-Hans', 'fa', 'en'."""
    return (normalize(code) or DEFAULT).replace("_", "-")


def set_resolver(resolver: Callable[[], str | None] | None) -> None:
    """Install the function that names the locale of the current request (the web layer's)."""
    global _resolver
    _resolver = resolver


def current_locale() -> str:
    """The locale in force: `use_locale`'s, else the request's, else English."""
    forced = _forced.get()
    if forced:
        return forced
    if _resolver is not None:
        resolved = normalize(_resolver())
        if resolved:
            return resolved
    return DEFAULT


@contextmanager
def use_locale(code: str | None):
    """Translate and format in `code` (an account's stored language) inside the block."""
    token = _forced.set(normalize(code) or DEFAULT)
    try:
        yield
    finally:
        _forced.reset(token)


@functools.lru_cache(maxsize=None)
def translations(code: str) -> support.NullTranslations:
    """The compiled catalogue of `code` (English and unknown codes: the identity)."""
    if code == DEFAULT or code not in LANGUAGES:
        return support.NullTranslations()
    return support.Translations.load(str(TRANSLATIONS_DIR), [code], domain="messages")


def gettext(message: str, **variables) -> str:
    """`message` translated into the locale in force, then %-formatted with `variables`."""
    text = translations(current_locale()).ugettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables) -> str:
    """The plural form for `num` in the locale in force; `num` is available as %(num)s."""
    variables.setdefault("num", format_number(num))
    text = translations(current_locale()).ungettext(singular, plural, num)
    return text % variables


def lazy_gettext(message: str, **variables) -> support.LazyProxy:
    """A module-level string, translated each time it is used, in the locale then in force."""
    return support.LazyProxy(gettext, message, enable_cache=False, **variables)


def N_(message: str) -> str:
    """Mark `message` for extraction where it must stay a plain str; translate it with gettext where shown."""
    return message


_ = gettext


def label(code: str | None) -> str:
    """A language for English-reading staff: 'Persian (fa), فارسی'."""
    known = normalize(code) or DEFAULT
    english = Locale.parse(known).get_display_name("en")
    native = LANGUAGES[known][0]
    return f"{english} ({known})" if native == english else f"{english} ({known}), {native}"


def babel_locale(code: str | None = None) -> Locale:
    """The Babel Locale of `code` (default: the locale in force)."""
    # English is written the way the source texts are: "2 January 2019", not "January 2, 2019".
    known = normalize(code) or current_locale()
    return Locale.parse("en_GB" if known == DEFAULT else known)


# Persian is written with its own digits; Arabic keeps CLDR's default Latin digits (usage varies by country).
_NATIVE_DIGITS = {"fa": str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")}


def digits(text: str) -> str:
    """`text` with its digits written the way the locale in force writes them."""
    table = _NATIVE_DIGITS.get(current_locale())
    return text.translate(table) if table else text


def format_number(value) -> str:
    """A number in the locale in force: 12,345 / 12.345 / 12 345 / ۱۲٬۳۴۵."""
    return digits(numbers.format_decimal(value, locale=babel_locale()))


def when(value) -> str:
    """An ISO timestamp, datetime or date as people of the locale read it (times in UTC)."""
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "")) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return value
    locale = babel_locale()
    day = digits(dates.format_date(value, "long", locale=locale))
    if not isinstance(value, datetime):
        return day
    # The locale's own way of joining a date and a time ("{1}, {0}", "{1} {0}" ...); times are UTC.
    joined = str(locale.datetime_formats["medium"]).replace("{1}", day)
    return joined.replace("{0}", digits(dates.format_time(value, "short", locale=locale))) + " UTC"
