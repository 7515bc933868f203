"""issue 13: every form and query parameter, filled with odd Unicode, gets a 4xx (or a normal answer),
never a 5xx. The app runs in test mode, where an unhandled exception fails the test outright."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest

from appeals import runtime
from appeals.api.openapi import document
from tests.reviewer.conftest import make_appeal
from tests.security.matrix_probe import clients
from tests.security.test_access_matrix import MATRIX

ROOT = Path(__file__).resolve().parents[2]
# Digits of other scripts, full-width forms, NUL, a lone surrogate (as the bytes a browser could send),
# a very long value, and a full-width TOTP-like code.
ODD = ["²", "١٢٣", "１２３４５６", "a\x00b", "\udc80", "９" * 30 + "x" * 5_000, "-1e9"]
STAFF_PATHS = re.compile(r"^/(review|admin)/|^/api/v1/(queue|audit|dashboard|review/)|/(claim|confirm|decision|notes|"
                         r"release|send-back)$")


def parameter_names() -> set[str]:
    """Every field name of every form in the templates, and every parameter and body field of the API."""
    names = set()
    for template in list(ROOT.glob("appeals/**/*.html")) + list(ROOT.glob("reviewer_ui/**/*.html")):
        names.update(re.findall(r'name="([a-z_]+)"', template.read_text()))
    for operations in document()["paths"].values():
        for op in operations.values():
            names.update(p["name"] for p in op.get("parameters", []) if p["in"] == "query")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            names.update(body.get("properties", {}))
    names.discard("csrf_token")
    return names


def encode(value: str) -> str:
    # A lone surrogate cannot be UTF-8; send the bytes a broken client would (invalid UTF-8).
    return quote(value, safe="") if value != "\udc80" else "%ED%B2%80"


@pytest.mark.slow
def test_odd_unicode_in_every_parameter_is_never_a_5xx(app, cast, corpus, make_staff):
    app.config["WTF_CSRF_ENABLED"] = False
    runtime.bootstrap(replace(runtime.settings(), login_rate_limit="10000 per minute",
                              login_account_rate_limit="10000 per minute"))
    appeal = make_appeal(cast["owner"])
    name = corpus[0].name
    files = runtime.engine().manifest(name, 1)["files"]
    values = {"appeal": appeal.id, "researcher": cast["researcher_no_grant"].id, "dataset": name,
              "target": make_staff("target@review.example", "reviewer").id,
              "file": next(f["path"] for f in files if f["variant"] == "hashed"),
              "ufile": next(f["path"] for f in files if f["variant"] == "unhashed")}
    sessions = clients(app, cast)
    names = sorted(parameter_names())
    failures = []
    for method, path, _expected in MATRIX:
        if (method, path) in (("DELETE", "/api/v1/tokens"), ("POST", "/logout")):
            continue
        url = path.format(**values)
        # The role that reaches the route's code (a refused request tests little).
        for role in ("admin",) if STAFF_PATHS.search(path) else ("owner",):
            client, token = sessions[role]
            headers = {"Authorization": f"Bearer {token}"} if token and url.startswith("/api/") else {}
            for value in ODD:
                query = "&".join(f"{n}={encode(value)}" for n in names)
                if method == "GET":
                    response = client.get(f"{url}?{query}", headers=headers)
                elif url.startswith("/api/"):
                    body = json.dumps({n: value for n in names})
                    response = client.open(url, method=method, data=body, content_type="application/json",
                                           headers=headers)
                else:
                    response = client.open(url, method=method, data=query.encode("ascii"), headers=headers,
                                           content_type="application/x-www-form-urlencoded")
                if response.status_code >= 500:
                    failures.append(f"{method} {url} as {role} with {value[:12]!r}: {response.status_code}")
    assert not failures, "\n".join(failures[:40])


@pytest.mark.parametrize("path", ["/datasets/%00", "/datasets/%ED%B2%80", "/api/v1/datasets/%00/releases",
                                  "/review/invitations/%00" + "a" * 30])
def test_odd_path_parameters_are_4xx(client, path):
    assert 400 <= client.get(path).status_code < 500
