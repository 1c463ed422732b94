"""/api/v1/journeys, /jobs/run, /tasks, member messages and the public message links /t/…
(SQLite + PostgreSQL)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from omo.apikeys.service import create_key
from omo.db import UnitOfWork
from omo.journeys import playbook
from omo.shared import clock

DAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Taipei
HELLO = {
    "name": "hello", "trigger": {"kind": "joined"}, "control_share": 0,
    "steps": [{"type": "issue_coupon", "template": "FIRST100"},
              {"type": "send", "channel": "email", "template": "welcome"}],
}  # fmt: skip


def _setup(api: TestClient, uow: UnitOfWork) -> int:
    clock.set_clock(lambda: DAY)
    api.app.state.settings = api.app.state.settings.model_copy(update={"outbox_settle_s": 0})  # type: ignore[attr-defined]
    playbook.seed(uow)
    assert api.put("/api/v1/journeys/hello", json=HELLO).status_code == 201
    assert api.post("/api/v1/journeys/hello/enable").json()["enabled"] is True
    r = api.post(
        "/api/v1/members",
        json={"identifiers": [{"kind": "email", "value": "mei@example.com"}],
              "name": "陳美玲", "consents": {"email": True}},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    member_id: int = r.json()["member"]["id"]
    return member_id


def _run(api: TestClient) -> dict[str, Any]:
    r = api.post("/api/v1/jobs/run")
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def test_journey_lifecycle_over_http(api: TestClient, uow: UnitOfWork, tmp_path: Any) -> None:
    member = _setup(api, uow)
    listed = api.get("/api/v1/journeys").json()
    assert "hello" in [j["key"] for j in listed] and "welcome" in [j["key"] for j in listed]
    api.app.state.adapters = {c: _Keep() for c in ("email", "sms", "line", "push")}  # type: ignore[attr-defined]
    first = _run(api)
    assert first["entered"]["hello"] == 1 and first["delivery"]["sent"] == 1
    assert _run(api)["delivery"]["sent"] == 0  # nothing twice
    messages = api.get(f"/api/v1/members/{member}/messages").json()
    assert [(m["channel"], m["state"]) for m in messages] == [("email", "sent")]
    assert "陳美玲" in messages[0]["body"]
    # the welcome carries the member's card link, which opens their card
    card_path = re.search(r"/card/OMO1\.[\w.\-]+", messages[0]["body"]).group(0)  # type: ignore[union-attr]
    card = TestClient(api.app).get(card_path)
    assert card.status_code == 200 and "陳美玲" in card.text
    report = api.get("/api/v1/journeys/hello/report").json()
    assert report["treatment"]["members"] == 1 and report["messages"] == {"sent": 1}
    # a new version
    changed = {**HELLO, "conversion_days": 30}
    again = api.put("/api/v1/journeys/hello", json=changed)
    assert again.status_code == 200 and again.json()["version"] == 2
    assert api.post("/api/v1/journeys/hello/disable").json()["enabled"] is False


class _Keep:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, message: Any) -> str:
        self.sent.append(message)
        return "ok"


def test_bad_journeys_are_422_and_unknown_404(api: TestClient, uow: UnitOfWork) -> None:
    playbook.seed(uow)
    r = api.put("/api/v1/journeys/x", json={**HELLO, "audience": "shoe_size > 3"})
    assert r.status_code == 422 and "shoe_size" in r.text
    r = api.put("/api/v1/journeys/x", json={**HELLO, "trigger": {"kind": "dormant", "days": 0}})
    assert r.status_code == 422 and "trigger" in r.text
    assert api.put("/api/v1/journeys/Bad Key!", json=HELLO).status_code == 422
    assert api.get("/api/v1/journeys/nope").status_code == 404
    assert api.get("/api/v1/journeys/nope/report").status_code == 404
    assert api.post("/api/v1/journeys/nope/enable").status_code == 404
    assert "x" not in [j["key"] for j in api.get("/api/v1/journeys").json()]


def test_journeys_need_the_marketing_scope(client: TestClient, uow: UnitOfWork) -> None:
    reader = create_key(uow, name="analyst", store_code=None, scopes=["kpis:read"]).key
    client.headers["Authorization"] = f"Bearer {reader}"
    assert client.get("/api/v1/journeys").status_code == 200
    assert client.put("/api/v1/journeys/x", json=HELLO).status_code == 403
    assert client.post("/api/v1/jobs/run").status_code == 403


def test_message_links_track_and_unsubscribe(api: TestClient, uow: UnitOfWork) -> None:
    member = _setup(api, uow)
    keep = _Keep()
    api.app.state.adapters = {c: keep for c in ("email", "sms", "line", "push")}  # type: ignore[attr-defined]
    _run(api)
    sent = keep.sent[0]
    token = sent.pixel_url.split("/t/")[1].split("/")[0]
    public = TestClient(api.app)  # no key: the token is the credential
    assert public.get(f"/t/{token}/open.gif").headers["content-type"] == "image/gif"
    click = public.get(f"/t/{token}/c/0", follow_redirects=False)
    assert click.status_code == 302 and click.headers["location"] == "https://shop.example.com"
    assert public.get(f"/t/{token}/c/7", follow_redirects=False).status_code == 404
    assert public.get("/t/notatokenatall/open.gif").status_code == 404
    png = public.get(f"/t/{token}/coupon.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    report = api.get("/api/v1/journeys/hello/report").json()
    assert (report["opened"], report["clicked"], report["click_rate"]) == (1, 1, 1.0)
    # the unsubscribe page changes nothing until its button (or a one-click POST)
    assert "取消訂閱" in public.get(f"/t/{token}/unsubscribe").text
    view = api.get(f"/api/v1/members/{member}").json()
    assert {c["channel"]: c["granted"] for c in view["consents"]} == {"email": True}
    assert public.post(f"/t/{token}/unsubscribe").status_code == 200
    view = api.get(f"/api/v1/members/{member}").json()
    assert {c["channel"]: c["granted"] for c in view["consents"]} == {"email": False}


def test_tasks_are_bound_to_the_store(api: TestClient, uow: UnitOfWork) -> None:
    from omo.tasks import service as tasks

    for code in ("TPE-101", "KHH-201"):
        api.put(f"/api/v1/stores/{code}", json={"name": code, "region": "台灣"})
    stores = {s["code"]: s["id"] for s in api.get("/api/v1/stores").json()}
    member = api.post(
        "/api/v1/members", json={"identifiers": [{"kind": "phone", "value": "0912345678"}]}
    ).json()["member"]["id"]
    with uow.write() as s:
        for code in stores:
            tasks.create_in(
                s, member_id=member, store_id=stores[code], kind="care_call", note="call",
                key=f"t-{code}", now=DAY,
            )  # fmt: skip
    assert len(api.get("/api/v1/tasks").json()) == 2
    pos = create_key(uow, name="pos-tpe", store_code="TPE-101", scopes=None).key
    store_client = TestClient(api.app)
    store_client.headers["Authorization"] = f"Bearer {pos}"
    mine = store_client.get("/api/v1/tasks").json()
    assert [t["store_id"] for t in mine] == [stores["TPE-101"]]
    assert store_client.get(f"/api/v1/tasks?store_id={stores['KHH-201']}").status_code == 403
    other = [t for t in api.get("/api/v1/tasks").json() if t["store_id"] == stores["KHH-201"]]
    assert store_client.post(f"/api/v1/tasks/{other[0]['id']}/done").status_code == 403
    done = store_client.post(f"/api/v1/tasks/{mine[0]['id']}/done")
    assert done.status_code == 200 and done.json()["done_at"] is not None
    assert store_client.get("/api/v1/tasks").json() == []
    assert api.post("/api/v1/tasks/99999/done").status_code == 404
