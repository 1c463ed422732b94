"""The HTTP layer: auth, status codes and the one error shape (SQLite + PostgreSQL)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from omo.apikeys.service import SCOPES, create_key
from omo.db import UnitOfWork
from tests.factories import enrol

ORDER = {
    "channel": "web",
    "external_id": "W-1",
    "ordered_at": "2026-01-01T10:00:00+08:00",
    "customer": [{"kind": "phone", "value": "0912-345-678"}],
    "lines": [{"sku": "S", "quantity": 1, "unit_price": "100.00"}],
}


def test_health_and_openapi_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert "/api/v1/orders" in client.get("/openapi.json").json()["paths"]


def test_api_needs_a_valid_key(client: TestClient) -> None:
    assert client.get("/api/v1/stores").status_code == 401
    bad = client.get("/api/v1/stores", headers={"X-API-Key": "omo_nope_nope"})
    assert bad.status_code == 401


def test_a_key_without_the_scope_is_refused(client: TestClient, uow: UnitOfWork) -> None:
    key = create_key(uow, name="reader", store_code=None, scopes=["members:read"]).key
    r = client.post("/api/v1/orders", json=ORDER, headers={"X-API-Key": key})
    assert r.status_code == 403
    assert r.json()["detail"][0]["type"] == "missing_scope"


def test_enrol_lookup_and_view(api: TestClient) -> None:
    r = api.post(
        "/api/v1/members", json={"identifiers": [{"kind": "phone", "value": "0912-345-678"}]}
    )
    assert r.status_code == 201
    mid = r.json()["member"]["id"]
    again = api.post(
        "/api/v1/members", json={"identifiers": [{"kind": "phone", "value": "+886912345678"}]}
    )
    assert again.status_code == 200
    assert again.json()["member"]["id"] == mid
    assert api.get("/api/v1/members/lookup", params={"phone": "0912345678"}).json()["id"] == mid
    assert api.get(f"/api/v1/members/{mid}").json()["identifiers"][0]["value"] == "+886912345678"
    assert api.get("/api/v1/members/999999").status_code == 404


def test_bad_input_names_the_field(api: TestClient) -> None:
    r = api.post("/api/v1/members", json={"identifiers": [{"kind": "phone", "value": "12"}]})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "identifiers", "0", "value"]
    r = api.post("/api/v1/orders", json={**ORDER, "total": "1.00"})
    assert r.status_code == 422
    assert "total" in r.json()["detail"][0]["msg"]
    r = api.get("/api/v1/members/lookup", params={"phone": "0912345678", "email": "a@b.co"})
    assert r.status_code == 422


def test_order_retry_answers_200_with_the_first_result(api: TestClient) -> None:
    first = api.post("/api/v1/orders", json=ORDER)
    again = api.post("/api/v1/orders", json=ORDER)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["replayed"] is True
    assert again.json()["total"] == "100.00"
    assert api.post("/api/v1/orders", json={**ORDER, "shipping_fee": "60"}).status_code == 409


def test_every_api_route_needs_a_key_and_a_scope(client: TestClient, uow: UnitOfWork) -> None:
    """Walk every operation the API publishes: without a key it answers 401, and one of the keys
    that hold every scope but one is refused with 403 missing_scope (the route's own scope)."""
    paths = client.get("/openapi.json").json()["paths"]
    operations = [
        (method.upper(), path) for path, ops in paths.items() if path.startswith("/api/v1/")
        for method in ops
    ]  # fmt: skip
    assert len(operations) > 60
    lacking = {
        scope: create_key(
            uow, name=f"all-but-{scope}", store_code=None, scopes=sorted(SCOPES - {scope})
        ).key
        for scope in sorted(SCOPES)
    }
    for method, template in operations:
        path = re.sub(r"\{[^}]+\}", "1", template)
        assert client.request(method, path).status_code == 401, (method, template)
        refused = []
        for scope, key in lacking.items():
            r = client.request(method, path, headers={"X-API-Key": key})
            if r.status_code == 403 and r.json()["detail"][0]["type"] == "missing_scope":
                refused.append(scope)
                break
        assert refused, f"{method} {template} answers every key, whatever its scopes"


def test_an_id_past_the_databases_integer_is_refused_by_name(api: TestClient) -> None:
    """Ids are PostgreSQL `integer`: a larger one in a path or a body is a 422 naming it, where
    it reached the database and came back as a 500 (out of range) — or on SQLite, past 2**63,
    as an OverflowError."""
    lines = [{"sku": "A", "quantity": 1, "unit_price": "10"}]
    for too_big in (2**31, 2**70):
        r = api.get(f"/api/v1/members/{too_big}/points")
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"][-1] == "member_id"
        for path, body in (
            ("/api/v1/checkout/quote", {"channel": "pos", "lines": lines}),
            ("/api/v1/checkout/commit", {"channel": "pos", "external_id": "X", "lines": lines}),
        ):
            r = api.post(path, json={**body, "member_id": too_big})
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0]["loc"] == ["body", "member_id"]
    r = api.get(f"/api/v1/members/{2**31 - 1}/points")
    assert r.status_code == 404  # the largest id that can be: looked up, not there


def test_a_refusal_names_the_part_of_the_request_its_field_is_in(
    api: TestClient, uow: UnitOfWork
) -> None:
    """A domain refusal of a path or query parameter said it was in the body (`["body",
    "member_id"]` for `/members/999/rewards`, `["body", "to"]` for a clearing's `to`): a client
    that maps `loc` back to its inputs looked for a field the request has no body for."""
    lines = [{"sku": "A", "quantity": 1, "unit_price": "10"}]
    member = enrol(uow, phone="0912-345-678").member.id
    for method, path, body, loc in (
        ("GET", "/api/v1/members/999/rewards", None, ["path", "member_id"]),
        ("GET", "/api/v1/segments/NOPE/members", None, ["path", "name"]),
        ("GET", "/api/v1/rewards/redemptions/owed?member_id=999", None, ["query", "member_id"]),
        ("GET", "/api/v1/points/movements?from=1999-01-01&to=2000-01-02", None, ["query", "from"]),
        ("GET", "/api/v1/points/movements?from=2026-01-01&to=2099-01-01", None, ["query", "to"]),
        ("GET", "/api/v1/points/movements?from=2000-01-01&to=2026-01-01&by=day", None,
         ["query", "by"]),
        ("GET", "/api/v1/points/clearing?from=2026-01-01&to=2099-01-01", None, ["query", "to"]),
        ("GET", "/api/v1/refunds/clearing?from=2026-02-01&to=2026-01-01", None, ["query", "to"]),
        ("GET", "/api/v1/facts?topic=Nope", None, ["query", "topic"]),
        ("GET", f"/api/v1/members/{member}/orders?before=999", None, ["query", "before"]),
        ("GET", "/api/v1/orders/lookup?channel=pos&external_id=NOPE", None,
         ["query", "external_id"]),
        ("POST", "/api/v1/checkout/quote", {"channel": "pos", "lines": lines, "member_id": 999},
         ["body", "member_id"]),
        # a coupon the sale refuses, by its place in the list (it said "code", not in the body)
        ("POST", "/api/v1/checkout/commit", {"channel": "web", "external_id": "W-1", "lines": lines,
                                             "coupon_codes": ["nope-nope-nope"]},
         ["body", "coupon_codes", "0"]),
    ):  # fmt: skip
        r = api.request(method, path, json=body)
        assert r.status_code in (404, 422), (path, r.text)
        assert r.json()["detail"][0]["loc"] == loc, (path, r.text)
