"""The message catalogues: complete in every shipped language, placeholders kept, and current with the source."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from appeals import i18n
from appeals.services import reference

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [code for code in i18n.LANGUAGES if code != i18n.DEFAULT]
PYTHON_FORMAT = re.compile(r"%\((\w+)\)[sdr]")
BRACES = re.compile(r"\{(\w+)\}")
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None, "N_": None}


def _po(code: str):
    with open(i18n.TRANSLATIONS_DIR / code / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh, locale=code)


def _sources(message) -> list[str]:
    return list(message.id) if isinstance(message.id, (tuple, list)) else [message.id]


def _targets(message) -> list[str]:
    return list(message.string) if isinstance(message.string, (tuple, list)) else [message.string]


def _pairs(catalogue) -> dict:
    as_key = lambda value: tuple(value) if isinstance(value, (list, tuple)) else value  # noqa: E731
    return {as_key(m.id): as_key(m.string) for m in catalogue if m.id}


def _extracted() -> set:
    """Every message the code and templates mark today, extracted the way tools/i18n.sh does."""
    method_map = [("appeals/**.py", "python"), ("appeals/**/templates/**.html", "jinja2")]
    options = {"appeals/**/templates/**.html": {"trimmed": "true"}}
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options, keywords={**KEYWORDS, "gettext": None, "_": None}):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_babel_cfg_is_what_the_test_extracts_with():
    # The test mirrors babel.cfg; if someone changes one, they must change the other.
    cfg = (ROOT / "babel.cfg").read_text()
    assert "[python: appeals/**.py]" in cfg and "[jinja2: appeals/**/templates/**.html]" in cfg


@pytest.mark.parametrize("code", SHIPPED)
def test_every_message_is_translated_and_none_is_fuzzy(code):
    catalogue = _po(code)
    untranslated = [m.id for m in catalogue if m.id and not all(_targets(m))]
    fuzzy = [m.id for m in catalogue if m.id and m.fuzzy]
    assert not untranslated, f"{code}: {len(untranslated)} untranslated, e.g. {untranslated[:5]}"
    assert not fuzzy, f"{code}: fuzzy messages {fuzzy[:5]}"
    assert len(_targets(next(m for m in catalogue if m.pluralizable))) == catalogue.num_plurals


@pytest.mark.parametrize("code", SHIPPED)
def test_placeholders_are_kept(code):
    """python-format names and {braces} of every translation match the source's."""
    problems = []
    for message in _po(code):
        if not message.id:
            continue
        source_names = set().union(*(set(PYTHON_FORMAT.findall(s)) for s in _sources(message)))
        source_braces = set().union(*(set(BRACES.findall(s)) for s in _sources(message)))
        for target in _targets(message):
            names = set(PYTHON_FORMAT.findall(target))
            # A plural form may leave out the count it stands for ("one dataset"), nothing else.
            if not names <= source_names or source_names - names - {"num"}:
                problems.append((message.id, target))
            if set(BRACES.findall(target)) != source_braces:
                problems.append((message.id, target))
            # A stray % would break the formatting at run time.
            if "%" in PYTHON_FORMAT.sub("", target).replace("%%", ""):
                problems.append((message.id, target))
    assert not problems, f"{code}: placeholders differ: {problems[:5]}"


def test_the_template_is_current_with_the_source():
    """Every marked string is in messages.pot (run `tools/i18n.sh update` after marking new ones)."""
    with open(i18n.TRANSLATIONS_DIR / "messages.pot", "rb") as fh:
        pot = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}
    missing = _extracted() - pot
    assert not missing, f"marked but not in messages.pot: {sorted(missing)[:10]}"


@pytest.mark.parametrize("code", SHIPPED)
def test_every_catalogue_has_every_message_of_the_template(code):
    with open(i18n.TRANSLATIONS_DIR / "messages.pot", "rb") as fh:
        pot = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}
    po = {m.id if isinstance(m.id, str) else m.id[0] for m in _po(code) if m.id}
    assert pot - po == set(), f"{code}: run tools/i18n.sh update; missing {sorted(pot - po)[:5]}"


@pytest.mark.parametrize("code", SHIPPED)
def test_the_committed_mo_is_compiled_from_the_po(code):
    """The .mo shipped in the package says exactly what the .po says (run `tools/i18n.sh compile`)."""
    compiled = io.BytesIO()
    write_mo(compiled, _po(code))
    compiled.seek(0)
    expected = _pairs(read_mo(compiled))
    with open(i18n.TRANSLATIONS_DIR / code / "LC_MESSAGES" / "messages.mo", "rb") as fh:
        shipped = _pairs(read_mo(fh))
    assert shipped == expected, f"{code}: messages.mo is stale; run tools/i18n.sh compile"


@pytest.mark.parametrize("code", SHIPPED)
def test_a_glossary_exists_for_every_language(code):
    glossary = (i18n.TRANSLATIONS_DIR / "GLOSSARY.md").read_text(encoding="utf-8")
    section = glossary.split(f"## {code} ", 1)
    assert len(section) == 2, f"GLOSSARY.md has no section for {code}"
    for term in ("pseudonym", "release", "dataset", "appeal"):  # the issue names these four
        assert re.search(rf"^\| {term} \|", section[1].split("\n## ", 1)[0], re.M), f"{code}: no entry for {term}"


@pytest.mark.parametrize("code", SHIPPED)
def test_default_message_templates_have_a_body_in_every_language(code):
    for name, english in reference.DEFAULT_TEMPLATES:
        body = reference.DEFAULT_TEMPLATE_TRANSLATIONS[name][code]
        assert sorted(reference.placeholders(body)) == sorted(reference.placeholders(english)), (code, name)


def test_package_data_ships_the_catalogues():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "translations/*/LC_MESSAGES/*.mo" in pyproject


def test_migration_gives_the_default_templates_their_translations(tmp_path):
    """0007 adds the owners' bodies of the default templates (0005) and downgrades cleanly on SQLite."""
    from sqlalchemy import create_engine, text

    from appeals import schema

    url = f"sqlite:///{tmp_path / 'languages.sqlite3'}"
    schema.upgrade(url, "0007_languages")
    engine = create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM message_template_bodies")).scalar()
        columns = {row[1] for row in conn.execute(text("PRAGMA table_info(accounts)"))}
    assert count == len(reference.DEFAULT_TEMPLATES) * len(SHIPPED)
    assert "language" in columns
    schema.downgrade(url, "0006_evidence_uploads")
    with engine.connect() as conn:
        tables = {row[0] for row in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
        columns = {row[1] for row in conn.execute(text("PRAGMA table_info(accounts)"))}
    assert "message_template_bodies" not in tables and "language" not in columns
    engine.dispose()
