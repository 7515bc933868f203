"""The reviewer API: queue, claim races as 409, decisions, four eyes as 403, stale versions, audit, OpenAPI."""

from __future__ import annotations

from tests.reviewer.conftest import bearer, make_appeal, token_for


def test_queue_claim_decide_confirm_through_the_api(client, owner, reviewer, reviewer2, senior, senior2, seeded):
    """The whole path with bearer tokens; a held claim is 409, the approver's and a reviewer's confirm are 403."""
    appeal = make_appeal(owner, age_days=20)
    rita, ravi = bearer(token_for(client, reviewer)), bearer(token_for(client, reviewer2))
    sam, sol = bearer(token_for(client, senior)), bearer(token_for(client, senior2))

    listing = client.get("/api/v1/queue", headers=rita).get_json()
    assert listing["total"] == 1 and listing["counts"]["filed"] == 1 and listing["overdue"] == 1
    item = listing["items"][0]
    assert item["id"] == appeal.id and item["overdue"] is True and item["screen_name"] == "bakery_jo"

    claimed = client.post(f"/api/v1/appeals/{appeal.id}/claim", headers=rita, json={"version": item["version"]})
    assert claimed.status_code == 200 and claimed.get_json()["status"] == "in_review"
    taken = client.post(f"/api/v1/appeals/{appeal.id}/claim", headers=ravi)
    assert taken.status_code == 409 and taken.get_json()["code"] == "claimed_by_other"

    stale = client.post(f"/api/v1/appeals/{appeal.id}/decision", headers=rita,
                        json={"action": "approve", "remedy": "remove", "statement": "Authentic.",
                              "version": item["version"]})
    assert stale.status_code == 409 and stale.get_json()["code"] == "stale_version"
    missing = client.post(f"/api/v1/appeals/{appeal.id}/decision", headers=rita,
                          json={"action": "approve", "statement": "Authentic."})
    assert missing.status_code == 422 and "remedy" in missing.get_json()["fields"]
    approved = client.post(f"/api/v1/appeals/{appeal.id}/decision", headers=rita,
                           json={"action": "approve", "remedy": "rehash", "reason_code": "authentic_account",
                                 "statement": "A real bakery.", "version": claimed.get_json()["version"]})
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"

    assert client.post(f"/api/v1/appeals/{appeal.id}/confirm", headers=rita).status_code == 403
    assert client.post(f"/api/v1/appeals/{appeal.id}/confirm", headers=ravi).status_code == 403
    detail = client.get(f"/api/v1/review/appeals/{appeal.id}", headers=sam).get_json()
    assert detail["allowed"]["confirm"] is True and detail["decision"]["approved_by_id"] == reviewer.id

    # A senior who approves cannot confirm their own approval either.
    other = make_appeal(owner, age_days=2)
    client.post(f"/api/v1/appeals/{other.id}/claim", headers=sam)
    client.post(f"/api/v1/appeals/{other.id}/decision", headers=sam,
                json={"action": "approve", "remedy": "remove", "statement": "Authentic."})
    own = client.post(f"/api/v1/appeals/{other.id}/confirm", headers=sam)
    assert own.status_code == 403 and "approver" in own.get_json()["message"]

    confirmed = client.post(f"/api/v1/appeals/{appeal.id}/confirm", headers=sol,
                            json={"version": approved.get_json()["version"]})
    assert confirmed.status_code == 200 and confirmed.get_json()["status"] == "correction_queued"
    assert confirmed.get_json()["decision"]["confirmed_by_id"] == senior2.id

    audit = client.get(f"/api/v1/audit?object_type=appeal&object_id={appeal.id}", headers=ravi).get_json()
    assert [e["action"] for e in audit["items"]] == ["appeal.confirm", "appeal.approve", "appeal.claim"]
    assert audit["items"][0]["actor"] == senior2.email and audit["items"][0]["before"]["status"] == "approved"


def test_bad_requests_get_clear_errors(client, owner, reviewer, seeded):
    appeal = make_appeal(owner)
    rita = bearer(token_for(client, reviewer))
    assert client.get("/api/v1/queue?sort=random", headers=rita).get_json()["fields"] == {
        "sort": "Choose one of: oldest, newest, due, footprint."}
    assert client.post(f"/api/v1/appeals/{appeal.id}/claim", headers=rita, json={"version": "1"}).status_code == 422
    assert client.post(f"/api/v1/appeals/{appeal.id}/decision", headers=rita, data="not json",
                       content_type="application/json").status_code == 422
    client.post(f"/api/v1/appeals/{appeal.id}/claim", headers=rita)
    wrong = client.post(f"/api/v1/appeals/{appeal.id}/decision", headers=rita, json={"action": "shrug",
                                                                                     "statement": "x"})
    assert wrong.status_code == 422 and wrong.get_json()["fields"]["action"]
    assert client.post("/api/v1/appeals/99999/claim", headers=rita).status_code == 404
    assert client.get("/api/v1/audit?since=yesterday", headers=rita).status_code == 422


def test_claim_next_through_the_api(client, owner, reviewer, seeded):
    rita = bearer(token_for(client, reviewer))
    assert client.post("/api/v1/queue/claim-next", headers=rita).status_code == 204
    appeal = make_appeal(owner)
    taken = client.post("/api/v1/queue/claim-next", headers=rita).get_json()
    assert taken["id"] == appeal.id and taken["assigned_to_id"] == reviewer.id


def test_openapi_documents_every_reviewer_route(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "get" in paths["/queue"] and "get" in paths["/audit"]
    for action in ("claim", "release", "decision", "confirm", "send-back", "notes"):
        assert "post" in paths[f"/appeals/{{appeal_id}}/{action}"]
    decision = paths["/appeals/{appeal_id}/decision"]["post"]
    schema = decision["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["action"]["enum"] == ["approve", "deny", "request_info", "escalate"]
    assert "409" in paths["/appeals/{appeal_id}/claim"]["post"]["responses"]
    assert "403" in paths["/appeals/{appeal_id}/confirm"]["post"]["responses"]
