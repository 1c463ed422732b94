"""Every /api/v1 route not covered in test_http.py: catalogue, events, merges, identity KPIs and
store-bound keys (SQLite + PostgreSQL)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from omo.apikeys.service import create_key
from omo.db import UnitOfWork


def _enrol(api: TestClient, phone: str, **kw: Any) -> int:
    r = api.post("/api/v1/members", json={"identifiers": [{"kind": "phone", "value": phone}], **kw})
    assert r.status_code == 201, r.text
    member_id: int = r.json()["member"]["id"]
    return member_id


def _event(n: int, **kw: Any) -> dict[str, Any]:
    return {
        "event_id": f"E-{n}",
        "kind": "view",
        "occurred_at": "2026-01-01T10:00:00+08:00",
        "channel": "web",
        "sku": "SKU-1",
        **kw,
    }


def test_stores_are_created_then_updated(api: TestClient) -> None:
    body = {"name": "台北信義店", "region": "台北市", "city": "信義區"}
    assert api.put("/api/v1/stores/TPE-101", json=body).status_code == 201
    again = api.put("/api/v1/stores/TPE-101", json={**body, "name": "台北信義旗艦店"})
    assert again.status_code == 200
    stores = api.get("/api/v1/stores").json()
    assert [(s["code"], s["name"]) for s in stores] == [("TPE-101", "台北信義旗艦店")]


def test_bad_store_input_changes_nothing(api: TestClient) -> None:
    r = api.put("/api/v1/stores/TPE-101", json={"name": "", "region": "台北市"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "name"]
    assert api.put("/api/v1/stores/bad code!", json={"name": "x", "region": "y"}).status_code == 422
    extra = api.put("/api/v1/stores/TPE-1", json={"name": "x", "region": "y", "colour": "red"})
    assert extra.status_code == 422
    assert api.get("/api/v1/stores").json() == []


def test_products_keep_money_exact_and_filter_by_category(api: TestClient) -> None:
    shirt = {"name": "棉T", "category": "服飾", "price": "590.00", "unit_cost": "212.40"}
    assert api.put("/api/v1/products/TS-1", json=shirt).status_code == 201
    mug = {"name": "馬克杯", "category": "生活", "price": "350"}
    assert api.put("/api/v1/products/MUG-1", json=mug).status_code == 201
    assert api.put("/api/v1/products/TS-1", json={**shirt, "price": "490"}).status_code == 200
    clothes = api.get("/api/v1/products", params={"category": "服飾"}).json()
    assert [(p["sku"], p["price"], p["unit_cost"]) for p in clothes] == [
        ("TS-1", "490.00", "212.40")
    ]
    assert len(api.get("/api/v1/products", params={"limit": 1}).json()) == 1
    assert api.get("/api/v1/products", params={"limit": 0}).status_code == 422
    # an offset past 64 bits reached SQLite and overflowed (a 500 schemathesis found)
    assert api.get("/api/v1/products", params={"offset": 2**63}).status_code == 422


def test_bad_product_prices_are_refused(api: TestClient) -> None:
    for price in ["-1", "1.001", "abc", "NaN", "Infinity", ""]:
        r = api.put("/api/v1/products/X-1", json={"name": "x", "category": "c", "price": price})
        assert r.status_code == 422, price
        assert r.json()["detail"][0]["loc"][-1] == "price"
    assert api.get("/api/v1/products").json() == []


def test_events_are_idempotent_and_linked(api: TestClient) -> None:
    mid = _enrol(api, "0912-000-111")
    batch = [
        _event(1, member_id=mid),
        _event(2, identifiers=[{"kind": "phone", "value": "+886 912 000 111"}]),
        _event(3, kind="search", sku=None, query="保溫杯"),
    ]
    first = api.post("/api/v1/events", json={"events": batch}).json()
    assert first == {"accepted": 3, "duplicates": 0, "linked_to_members": 2}
    retry = api.post("/api/v1/events", json={"events": batch}).json()
    assert retry == {"accepted": 0, "duplicates": 3, "linked_to_members": 0}


def test_a_bad_event_names_its_index_and_the_batch_is_not_written(api: TestClient) -> None:
    batch = [_event(1), _event(2, kind="feedback", sku=None, survey="nps", score=11)]
    r = api.post("/api/v1/events", json={"events": batch})
    assert r.status_code == 422
    detail = r.json()["detail"][0]
    assert detail["loc"][:3] == ["body", "events", 1]
    assert "0 to 10" in detail["msg"]
    assert api.post("/api/v1/events", json={"events": [_event(1)]}).json()["accepted"] == 1


def test_event_batches_have_a_size_limit(api: TestClient) -> None:
    assert api.post("/api/v1/events", json={"events": []}).status_code == 422
    big = [_event(n) for n in range(1001)]
    r = api.post("/api/v1/events", json={"events": big})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "events"]


def test_merge_then_undo_over_http(api: TestClient) -> None:
    a = _enrol(api, "0912-000-001", name="陳美玲")
    b = _enrol(api, "0912-000-002", name="陳美玲")
    merged = api.post(f"/api/v1/members/{a}/merge", json={"other_member_id": b, "note": "同一人"})
    assert merged.status_code == 201, merged.text
    merge = merged.json()
    assert (merge["survivor_id"], merge["absorbed_id"]) == (a, b)
    looked = api.get("/api/v1/members/lookup", params={"phone": "0912000002"}).json()
    assert looked["id"] == a
    assert api.get(f"/api/v1/merges/{merge['id']}").json()["id"] == merge["id"]
    undone = api.post(f"/api/v1/merges/{merge['id']}/undo")
    assert undone.status_code == 200
    assert undone.json()["undone_at"] is not None
    assert api.get("/api/v1/members/lookup", params={"phone": "0912000002"}).json()["id"] == b
    assert api.post(f"/api/v1/merges/{merge['id']}/undo").status_code == 409


def test_merge_refuses_nonsense(api: TestClient) -> None:
    a = _enrol(api, "0912-000-001")
    assert api.post(f"/api/v1/members/{a}/merge", json={"other_member_id": a}).status_code == 422
    missing = api.post(f"/api/v1/members/{a}/merge", json={"other_member_id": 999999})
    assert missing.status_code == 404
    assert api.get("/api/v1/merges/999999").status_code == 404
    assert api.post("/api/v1/merges/0/undo").status_code == 422


def test_identity_kpis_validate_the_period(api: TestClient) -> None:
    r = api.post(
        "/api/v1/orders",
        json={
            "channel": "web",
            "external_id": "W-1",
            "ordered_at": "2026-01-01T10:00:00+08:00",
            "lines": [{"sku": "S", "quantity": 1, "unit_price": "100.00"}],
        },
    )
    assert r.status_code == 201, r.text
    kpis = api.get("/api/v1/kpis/identity").json()
    assert kpis["orders"] == 1
    assert kpis["identification_rate"] == 0.0
    inside = api.get(
        "/api/v1/kpis/identity",
        params={"from": "2025-12-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"},
    )
    assert inside.json()["orders"] == 1
    backwards = api.get(
        "/api/v1/kpis/identity",
        params={"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    )
    assert backwards.status_code == 422
    assert backwards.json()["detail"][0]["loc"] == ["query", "from"]
    assert api.get("/api/v1/kpis/identity", params={"from": "yesterday"}).status_code == 422


def test_a_store_bound_key_records_only_for_its_store(api: TestClient, uow: UnitOfWork) -> None:
    for code in ("TPE-101", "KHH-201"):
        api.put(f"/api/v1/stores/{code}", json={"name": code, "region": "台灣"})
    till = create_key(uow, name="till", store_code="TPE-101", scopes=["orders:write"]).key
    order = {
        "channel": "pos",
        "ordered_at": "2026-01-01T10:00:00+08:00",
        "lines": [{"sku": "S", "quantity": 1, "unit_price": "100.00"}],
    }
    headers = {"Authorization": f"Bearer {till}"}
    ok = api.post(
        "/api/v1/orders", json={**order, "external_id": "P-1", "store": "TPE-101"}, headers=headers
    )
    assert ok.status_code == 201, ok.text
    other = api.post(
        "/api/v1/orders", json={**order, "external_id": "P-2", "store": "KHH-201"}, headers=headers
    )
    assert other.status_code == 403
    assert api.get("/api/v1/kpis/identity").json()["orders"] == 1
