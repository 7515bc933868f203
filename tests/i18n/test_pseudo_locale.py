"""Every owner and public page, with every form's error state, in a generated pseudo-locale.

The pseudo catalogue is made here from messages.pot: each message accented and wrapped in ⟦ ⟧. A page is
rendered in it, and any visible text left in plain English fails with the page and the string: it names
a string nobody marked for translation.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from appeals import db, i18n, runtime
from appeals.models import Account, Appeal
from tests.conftest import PASSWORD, csrf_from
from tests.owner.conftest import GOOD_APPEAL, file_for, move, web_login

pytestmark = pytest.mark.slow

# The pseudo-locale is installed under a shipped code so that negotiation picks it like any language.
PSEUDO = "ru"  # its dates and units are Cyrillic, so any Latin word left is a finding
ACCENTS = str.maketrans("aceinosuyACEINOSUY", "åçéîñøšûýÅÇÉÎÑØŠÛÝ")
TOKEN = re.compile(r"(%\(\w+\)[sdr]|\{\w+\}|<[^>]+>|&\w+;)")
# Words that are names, not English: products, formats, units and the like stay as they are.
ALLOWED = {"SHA", "SHA-", "kB", "GB", "SHA256SUMS", "UTC", "OpenSSL", "PEM", "Ed25519", "PNG", "JPEG", "PDF", "KB", "MB", "OK",
           "JSON", "API", "Python", "ID"}
SKIP_TAGS = {"script", "style", "pre", "code", "bdi", "textarea", "option", "time", "title"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]+")


def pseudo(text: str) -> str:
    """Accent every letter outside placeholders and markup, and wrap the message."""
    return "⟦" + "".join(part if TOKEN.fullmatch(part) else part.translate(ACCENTS)
                         for part in TOKEN.split(text)) + "⟧"


@pytest.fixture
def pseudo_app(settings, tmp_path, monkeypatch):
    """The web app with the pseudo catalogue as its only translations."""
    with open(i18n.TRANSLATIONS_DIR / "messages.pot", "rb") as fh:
        template = read_po(fh)
    catalogue = Catalog(locale=PSEUDO)
    for message in template:
        if not message.id:
            continue
        if isinstance(message.id, (tuple, list)):
            forms = [pseudo(message.id[0])] + [pseudo(message.id[1])] * (catalogue.num_plurals - 1)
            catalogue.add(message.id, forms, flags=message.flags)
        else:
            catalogue.add(message.id, pseudo(message.id), flags=message.flags)
    target = tmp_path / "translations" / PSEUDO / "LC_MESSAGES"
    target.mkdir(parents=True)
    with open(target / "messages.mo", "wb") as fh:
        write_mo(fh, catalogue)
    monkeypatch.setattr(i18n, "TRANSLATIONS_DIR", tmp_path / "translations")
    i18n.translations.cache_clear()
    from appeals import create_app

    app = create_app(settings)
    yield app
    i18n.translations.cache_clear()
    db.session.remove()


class _Visible(HTMLParser):
    """The page's text outside translated messages, in document order, skipping data and isolated user text.

    Messages may hold markup (a link, <code>), so "inside a message" is tracked across text nodes.
    """

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []  # True where the element's text is data, not interface
        self.depth = 0
        self.outside: list[str] = []  # one entry per text node or attribute: its untranslated part
        self.source: list[str] = []

    def _take(self, text: str, own_depth: bool) -> None:
        depth = 0 if own_depth else self.depth
        kept = []
        for ch in text:
            if ch == "⟦":
                depth += 1
            elif ch == "⟧":
                depth = max(0, depth - 1)
            elif depth == 0:
                kept.append(ch)
        if not own_depth:
            self.depth = depth
        self.outside.append("".join(kept))
        self.source.append(text.strip())

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = attrs.get("class") or ""
        skipped = (bool(self.stack and self.stack[-1]) or tag in SKIP_TAGS or attrs.get("dir") == "auto"
                   or "user-text" in classes or "digest" in classes)
        for name in ("title", "aria-label", "placeholder", "alt", "data-label"):
            if attrs.get(name) and not skipped:
                self._take(attrs[name], own_depth=True)
        if tag not in VOID:
            self.stack.append(skipped)

    def handle_endtag(self, tag):
        if tag not in VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not (self.stack and self.stack[-1]):
            self._take(data, own_depth=False)


def english_left(html: str, data: set[str]) -> list[str]:
    """The visible strings that still contain English words outside every translated message."""
    parser = _Visible()
    parser.feed(html)
    left = []
    for rest, text in zip(parser.outside, parser.source):
        for value in sorted(data, key=len, reverse=True):
            if value:
                rest = rest.replace(value, " ")
        # Identifiers (file names, addresses, versions) are data, whatever letters they hold.
        tokens = [t for t in rest.split() if not re.search(r"[\d_@./]", t)]
        words = [w for t in tokens for w in WORD.findall(t) if w not in ALLOWED]
        if words:
            left.append(f"{text!r} (English: {' '.join(words)})")
    return left


def check(client, method: str, url: str, known: set[str], expect: int | tuple = 200, **kwargs):
    response = client.open(url, method=method, headers={"Accept-Language": PSEUDO}, **kwargs)
    statuses = expect if isinstance(expect, tuple) else (expect,)
    assert response.status_code in statuses, f"{method} {url}: {response.status_code}"
    html = response.get_data(as_text=True)
    assert "⟦" in html, f"{method} {url}: the pseudo-locale was not used"
    left = english_left(html, known)
    assert not left, f"{method} {url} shows text nobody marked for translation: {left}"
    return html


def test_every_owner_and_public_page_is_translated(pseudo_app, corpus, corpus_account, make_account):
    app, owner = pseudo_app, corpus_account

    def new_client():
        # Every request of this visitor asks for the pseudo-locale, as a browser would.
        made = app.test_client()
        made.environ_base["HTTP_ACCEPT_LANGUAGE"] = PSEUDO
        return made

    client = new_client()
    engine = runtime.engine()
    names = {d.name for d in corpus}
    data = names | {owner.screen_name, owner.user_id, owner.email or "", GOOD_APPEAL["statement"],
                    GOOD_APPEAL["contact_email"], "appeals@localhost", "Which shop do you run?"}
    name = corpus[0].name

    # --- public pages, before and after a correction --------------------------------------------
    check(client, "GET", "/", data)
    check(client, "GET", "/datasets", data)
    check(client, "GET", "/verify", data)
    check(client, "GET", "/nowhere", data, 404)
    check(client, "GET", f"/datasets/{name}/download", data)
    token = csrf_from(client, f"/datasets/{name}/download")
    check(client, "POST", f"/datasets/{name}/download", data, 422, data={"csrf_token": token, "email": "x"})
    check(client, "POST", f"/datasets/{name}/download", data,
          data={"csrf_token": token, "email": "reader@example.org", "accept_terms": "yes", "variant": "hashed"})
    result = engine.apply("pseudo-locale", [(owner.user_id, "rehash")])
    new_version = result.releases[name]
    check(client, "GET", "/datasets", data)
    check(client, "GET", f"/datasets/{name}", data)
    check(client, "GET", f"/datasets/{name}/releases/{new_version}", data)
    check(client, "GET", f"/datasets/{name}/releases/1", data, 410)

    # --- researchers ---------------------------------------------------------------------------
    check(client, "GET", "/researchers/apply", data)
    token = csrf_from(client, "/researchers/apply")
    check(client, "POST", "/researchers/apply", data, 422, data={"csrf_token": token, "password": "short"})
    researcher = {"name": "Ada Example", "institution": "Example University", "email": "ada@uni.example",
                  "purpose": "Studying campaigns.", "password": PASSWORD, "accept_licence": "yes"}
    check(client, "POST", "/researchers/apply", data | set(researcher.values()), data={"csrf_token": token, **researcher})
    check(client, "GET", "/researchers/login", data)
    token = csrf_from(client, "/researchers/login")
    check(client, "POST", "/researchers/login", data, 401, data={"csrf_token": token, "email": "ada@uni.example",
                                                                 "password": "wrong password here"})
    client.post("/researchers/login", data={"csrf_token": token, "email": "ada@uni.example", "password": PASSWORD})
    check(client, "GET", "/researchers/me", data | set(researcher.values()))

    # --- owners ----------------------------------------------------------------------------------
    client = new_client()
    check(client, "GET", "/login", data)
    token = csrf_from(client, "/login")
    check(client, "POST", "/login", data, 422, data={"csrf_token": token, "username": "", "password": ""})
    check(client, "POST", "/login", data, 401, data={"csrf_token": token, "username": owner.screen_name,
                                                     "password": "not the password"})
    check(client, "GET", "/help", data)
    web_login(client, owner.screen_name)
    check(client, "GET", "/me", data)
    check(client, "GET", "/appeals/new", data)
    token = csrf_from(client, "/appeals/new")
    check(client, "POST", "/appeals/new", data, 422, data={"csrf_token": token})
    check(client, "POST", "/appeals/new", data, 422, data={
        "csrf_token": token, "reason": "compromised", "compromised_from_day": "31", "compromised_from_month": "2",
        "compromised_from_year": "2019", "compromised_until_year": "19", "compromised_until_day": "x",
        "compromised_until_month": "1", "statement": "", "contact_email": "nope"})
    appeal = file_for(owner)
    check(client, "GET", "/me", data)
    check(client, "GET", "/appeals/new", data, (200, 409))
    check(client, "GET", f"/appeals/{appeal.id}", data)
    token = csrf_from(client, f"/appeals/{appeal.id}")
    check(client, "POST", f"/appeals/{appeal.id}/withdraw", data, 422,
          data={"csrf_token": token, "version": str(appeal.version)})
    move(appeal.id, "in_review", "info_requested")
    check(client, "GET", f"/appeals/{appeal.id}", data)
    version = str(db.session.get(Appeal, appeal.id).version)
    check(client, "POST", f"/appeals/{appeal.id}/reply", data, 422,
          data={"csrf_token": token, "body": " ", "version": version})
    move(appeal.id, "in_review", "approved")
    check(client, "GET", f"/appeals/{appeal.id}", data)
    move(appeal.id, "in_review")  # sent back by the senior reviewer
    check(client, "GET", f"/appeals/{appeal.id}", data)
    move(appeal.id, "approved", "correction_queued", "correcting")
    check(client, "GET", f"/appeals/{appeal.id}", data)
    appeal_row = db.session.get(Appeal, appeal.id)
    appeal_row.decision_remedy = "rehash"
    db.session.commit()
    move(appeal.id, "corrected", data={"releases": result.releases})
    check(client, "GET", f"/appeals/{appeal.id}", data)
    check(client, "GET", "/me", data)
    check(client, "POST", f"/appeals/{appeal.id}/reply", data, 409,
          data={"csrf_token": token, "body": "late", "version": version})

    # A denied appeal with its statement of reasons, and the re-appeal form's extra field.
    other = make_account("777000111", "denied_owner", email="d@example.org")
    denied = Appeal(account_id=other.id, status="filed", reason="other", statement="s", contact_email="d@example.org",
                    due_at=appeal_row.due_at)
    db.session.add(denied)
    db.session.commit()
    client = new_client()
    web_login(client, other.screen_name)
    check(client, "GET", "/me", data | {"denied_owner", "777000111"})
    move(denied.id, "in_review", "denied", note="Reasons.")
    check(client, "GET", f"/appeals/{denied.id}", data | {"denied_owner", "Reasons."})
    assert db.session.get(Account, other.id) is not None
