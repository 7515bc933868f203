"""issue 13: the access matrix, table-driven: every route x every role, with the expected status.

Read a row as: method, path, then the status for anonymous, owner, other owner, reviewer, senior,
admin, researcher with a grant, researcher without one. Rows run in order against one filed
appeal of `owner` (so later rows see earlier rows' effects: the owner withdraws it on the way);
forms are posted empty (CSRF is tested elsewhere), JSON bodies are {}. A route added without a
row fails `test_every_route_has_a_row`.
"""

from __future__ import annotations

import re
from dataclasses import replace

from appeals import runtime
from appeals.api import openapi
from tests.reviewer.conftest import make_appeal
from tests.security.matrix_probe import ROLES, clients, request

# anonymous owner other_owner reviewer senior admin researcher researcher_no_grant
MATRIX = [
    ("GET", "/", "200 200 200 200 200 200 200 200"),
    ("POST", "/language", "303 303 303 303 303 303 303 303"),
    ("GET", "/help", "200 200 200 200 200 200 200 200"),
    ("GET", "/appeals/{appeal}/status.json", "401 200 404 403 403 403 403 403"),
    ("GET", "/appeals/{appeal}/files/999", "302 404 404 404 404 404 404 404"),
    ("GET", "/review/appeals/{appeal}/files/999", "302 404 404 404 404 404 404 404"),
    ("GET", "/api/v1/reference", "401 403 403 200 200 200 403 403"),
    ("GET", "/admin/researchers", "302 403 403 403 403 200 403 403"),
    ("POST", "/admin/researchers/{researcher}/approve", "302 403 403 403 403 302 403 403"),
    ("GET", "/admin/ledger", "302 302 302 403 403 200 302 302"),
    ("POST", "/admin/ledger/1/revoke", "302 302 302 403 403 302 302 302"),
    ("POST", "/api/v1/appeals", "401 409 409 403 403 403 403 403"),
    ("GET", "/api/v1/appeals/{appeal}", "401 200 404 200 200 200 403 403"),
    ("POST", "/api/v1/appeals/{appeal}/claim", "401 403 403 200 409 409 403 403"),
    ("POST", "/api/v1/appeals/{appeal}/confirm", "401 403 403 403 409 409 403 403"),
    ("POST", "/api/v1/appeals/{appeal}/decision", "401 422 422 422 422 422 422 422"),
    ("POST", "/api/v1/appeals/{appeal}/messages", "401 409 404 403 403 403 403 403"),
    ("POST", "/api/v1/appeals/{appeal}/notes", "401 403 403 422 422 422 403 403"),
    ("POST", "/api/v1/appeals/{appeal}/release", "401 403 403 200 409 409 403 403"),
    ("POST", "/api/v1/appeals/{appeal}/send-back", "401 403 403 403 422 422 403 403"),
    ("POST", "/api/v1/appeals/{appeal}/withdraw", "401 200 404 403 403 403 403 403"),
    ("GET", "/api/v1/audit", "401 403 403 200 200 200 403 403"),
    ("GET", "/api/v1/dashboard", "401 403 403 200 200 200 403 403"),
    ("GET", "/api/v1/datasets", "200 200 200 200 200 200 200 200"),
    ("GET", "/api/v1/datasets/{dataset}/releases", "200 200 200 200 200 200 200 200"),
    ("GET", "/api/v1/datasets/{dataset}/releases/1/manifest", "200 200 200 200 200 200 200 200"),
    ("POST", "/api/v1/downloads", "422 422 422 422 422 422 422 422"),
    ("GET", "/api/v1/me", "401 200 200 200 200 200 200 200"),
    ("GET", "/api/v1/me/appeals", "401 200 200 403 403 403 403 403"),
    ("GET", "/api/v1/me/footprint", "401 200 200 403 403 403 403 403"),
    ("GET", "/api/v1/openapi.json", "200 200 200 200 200 200 200 200"),
    ("GET", "/api/v1/queue", "401 403 403 200 200 200 403 403"),
    ("POST", "/api/v1/queue/claim-next", "401 403 403 204 204 204 403 403"),
    ("GET", "/api/v1/review/appeals/{appeal}", "401 403 403 200 200 200 403 403"),
    ("POST", "/api/v1/review/appeals/{appeal}/messages", "401 403 403 403 403 403 403 403"),
    ("POST", "/api/v1/tokens", "422 422 422 422 422 422 422 422"),
    ("GET", "/appeals/{appeal}", "302 200 404 403 403 403 403 403"),
    ("POST", "/appeals/{appeal}/reply", "302 409 404 403 403 403 403 403"),
    ("POST", "/appeals/{appeal}/withdraw", "302 422 404 403 403 403 403 403"),
    ("GET", "/appeals/new", "302 200 200 403 403 403 403 403"),
    ("POST", "/appeals/new", "302 409 409 403 403 403 403 403"),
    ("GET", "/datasets", "200 200 200 200 200 200 200 200"),
    ("GET", "/datasets/{dataset}", "200 200 200 200 200 200 200 200"),
    ("GET", "/datasets/{dataset}/download", "200 200 200 200 200 200 200 200"),
    ("POST", "/datasets/{dataset}/download", "422 422 422 422 422 422 422 422"),
    ("GET", "/datasets/{dataset}/releases/1", "200 200 200 200 200 200 200 200"),
    ("GET", "/datasets/{dataset}/releases/1/manifest.json", "200 200 200 200 200 200 200 200"),
    ("GET", "/datasets/{dataset}/releases/1/SHA256SUMS.sig", "200 200 200 200 200 200 200 200"),
    ("GET", "/files/{dataset}/1/hashed/{file}", "403 403 403 403 403 403 403 403"),
    ("GET", "/files/{dataset}/1/unhashed/{ufile}", "404 404 404 404 404 404 404 404"),
    ("GET", "/login", "200 302 302 200 200 200 200 200"),
    ("POST", "/login", "422 422 422 422 422 422 422 422"),
    ("GET", "/me", "302 200 200 403 403 403 403 403"),
    ("GET", "/researchers/apply", "200 200 200 200 200 200 200 200"),
    ("POST", "/researchers/apply", "422 422 422 422 422 422 422 422"),
    ("GET", "/researchers/login", "200 200 200 200 200 200 200 200"),
    ("POST", "/researchers/login", "401 401 401 401 401 401 401 401"),
    ("GET", "/researchers/me", "302 302 302 302 302 302 200 200"),
    ("GET", "/review/", "302 403 403 200 200 200 403 403"),
    ("GET", "/review/appeals/{appeal}", "302 403 403 200 200 200 403 403"),
    ("POST", "/review/appeals/{appeal}/claim", "302 403 403 409 409 409 403 403"),
    # The deliberate second step (the tick box, issue 15) is checked before the state: 422, not 409.
    ("POST", "/review/appeals/{appeal}/confirm", "302 403 403 403 422 422 403 403"),
    ("POST", "/review/appeals/{appeal}/decision", "302 403 403 422 422 422 403 403"),
    ("POST", "/review/appeals/{appeal}/messages", "302 403 403 403 403 403 403 403"),
    ("POST", "/review/appeals/{appeal}/notes", "302 403 403 422 422 422 403 403"),
    ("POST", "/review/appeals/{appeal}/release", "302 403 403 403 409 409 403 403"),
    ("POST", "/review/appeals/{appeal}/send-back", "302 403 403 403 422 422 403 403"),
    ("GET", "/review/audit", "302 403 403 200 200 200 403 403"),
    ("POST", "/review/claim-next", "302 403 403 303 303 303 403 403"),
    ("POST", "/review/corrections/999/retry", "302 403 403 403 403 303 403 403"),
    ("GET", "/review/dashboard", "302 403 403 200 200 200 403 403"),
    ("GET", "/review/invitations/not-a-real-invitation-token-000", "404 404 404 404 404 404 404 404"),
    ("POST", "/review/invitations/not-a-real-invitation-token-000", "404 404 404 404 404 404 404 404"),
    ("GET", "/review/login", "200 200 200 200 200 200 200 200"),
    ("POST", "/review/login", "401 401 401 401 401 401 401 401"),
    ("GET", "/review/login/code", "303 303 303 303 303 303 303 303"),
    ("POST", "/review/login/code", "303 303 303 303 303 303 303 303"),
    ("GET", "/review/reference", "302 403 403 403 403 200 403 403"),
    ("POST", "/review/reference", "302 403 403 403 403 422 403 403"),
    ("GET", "/review/staff", "302 403 403 403 403 200 403 403"),
    ("POST", "/review/staff", "302 403 403 403 403 422 403 403"),
    ("POST", "/review/staff/{target}/active", "302 403 403 403 403 303 403 403"),
    ("POST", "/review/staff/{target}/reset-totp", "302 403 403 403 403 303 403 403"),
    ("POST", "/review/staff/invitations/999/cancel", "302 403 403 403 403 404 403 403"),
    ("POST", "/review/staff/invitations/999/confirm", "302 403 403 403 403 404 403 403"),
    ("GET", "/signing-key.pem", "200 200 200 200 200 200 200 200"),
    ("GET", "/static/site.css", "200 200 200 200 200 200 200 200"),
    ("GET", "/verify", "200 200 200 200 200 200 200 200"),
    ("DELETE", "/api/v1/tokens", "401 204 204 204 204 204 204 204"),
    ("POST", "/logout", "302 302 302 302 302 302 302 302"),
]


def test_every_route_has_a_row(app):
    adapter = app.url_map.bind("testserver")
    sample = {"appeal": 1, "researcher": 1, "dataset": "d", "target": 1, "file": "f.csv", "ufile": "u.csv"}
    covered = {(adapter.match(path.format(**sample), method=method)[0], method) for method, path, _ in MATRIX}
    for rule in app.url_map.iter_rules():
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (rule.endpoint, method) in covered, f"no row for {method} {rule.rule}"


def test_access_matrix(app, cast, corpus, make_staff):
    app.config["WTF_CSRF_ENABLED"] = False
    # Every login route is posted once per role: the login limits are tested elsewhere.
    runtime.bootstrap(replace(runtime.settings(), login_rate_limit="100 per minute"))
    appeal = make_appeal(cast["owner"])
    name = corpus[0].name
    files = runtime.engine().manifest(name, 1)["files"]
    values = {
        "appeal": appeal.id, "researcher": cast["researcher_no_grant"].id, "dataset": name,
        "target": make_staff("target@review.example", "reviewer").id,
        "file": next(f["path"] for f in files if f["variant"] == "hashed"),
        "ufile": next(f["path"] for f in files if f["variant"] == "unhashed"),
    }
    sessions = clients(app, cast)
    wrong = []
    for method, path, expected in MATRIX:
        for role, status in zip(ROLES, expected.split()):
            client, token = sessions[role]
            got = request(client, token, method, path.format(**values)).status_code
            if str(got) != status:
                wrong.append(f"{method} {path} as {role}: expected {status}, got {got}")
            if str(got) not in documented_statuses(path, method):
                wrong.append(f"{method} {path} as {role}: {got} is not in the OpenAPI document")
    assert not wrong, "\n".join(wrong)


def documented_statuses(path: str, method: str) -> set[str]:
    """The statuses the OpenAPI document gives for an API row; every status for a page row."""
    if not path.startswith("/api/v1/") or path == "/api/v1/openapi.json":
        return {str(code) for code in range(100, 600)}
    concrete = path[len("/api/v1"):].replace("{", "x").replace("}", "")
    for documented, operations in openapi.document()["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]*\}", "[^/]+", documented), concrete):
            return set(operations[method.lower()]["responses"])
    raise AssertionError(f"{method} {path} is not in the OpenAPI document")


def test_wrong_credentials_are_a_documented_401(client):
    """Schemathesis found this one: a token request with unknown credentials answers 401, documented."""
    response = client.post("/api/v1/tokens", json={"username": "\u00b9s", "password": "not-it"})
    assert response.status_code == 401 and response.get_json()["code"] == "invalid_credentials"
    assert "401" in documented_statuses("/api/v1/tokens", "POST")
