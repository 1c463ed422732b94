"""The admin UI over HTTP (SQLite + PostgreSQL): sign-in, roles on every page, store binding,
CSRF on every form, masked personal data for analysts, languages."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from omo.db import UnitOfWork
from omo.settings import Settings
from omo.users import service as users
from omo.users.roles import Permission, Role, may
from tests import factories as f
from tests.conftest import dump

PASSWORD = "correct horse battery"
PAGES = ["/ui/", "/ui/members", "/ui/settings"]


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> TestClient:
    page = client.get("/ui/login")
    r = client.post(
        "/ui/login",
        data={"username": username, "password": password, "csrf": _csrf(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client


@pytest.fixture
def people(uow: UnitOfWork) -> dict[str, int]:
    tpe, khh = f.store(uow, "TPE-101"), f.store(uow, "KHH-201", region="高雄市")
    for name, role, store in [
        ("boss", "admin", None), ("mkt", "marketer", None), ("ana", "analyst", None),
        ("tpe", "staff", "TPE-101"),
    ]:  # fmt: skip
        users.create_user(uow, username=name, password=PASSWORD, role=role, store_code=store)
    member = f.enrol(
        uow, name="陳美玲",
        identifiers=[{"kind": "phone", "value": "0912-345-678"},
                     {"kind": "email", "value": "mei@example.com"}],
    ).member.id  # fmt: skip
    return {"tpe": tpe, "khh": khh, "member": member}


def test_pages_need_a_signed_in_user(client: TestClient) -> None:
    for page in [*PAGES, "/ui/members/1", "/ui/stores/1"]:
        r = client.get(page, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login"), page


def test_wrong_password_is_refused_the_same_way(client: TestClient, people: dict[str, int]) -> None:
    for username, password in [("boss", "wrong password!"), ("nobody", PASSWORD)]:
        page = client.get("/ui/login")
        r = client.post(
            "/ui/login",
            data={"username": username, "password": password, "csrf": _csrf(page.text)},
        )
        assert r.status_code == 401 and "omo_session" not in r.headers.get("set-cookie", "x")
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_every_role_reaches_exactly_its_pages(
    settings: object, people: dict[str, int], client: TestClient
) -> None:
    expected = {
        "boss": {"/ui/": 200, "/ui/members": 200, "/ui/settings": 200},
        "mkt": {"/ui/": 200, "/ui/members": 200, "/ui/settings": 403},
        "ana": {"/ui/": 200, "/ui/members": 200, "/ui/settings": 403},
        "tpe": {"/ui/": 303, "/ui/members": 200, "/ui/settings": 403},
    }
    for username, pages in expected.items():
        client.cookies.clear()
        sign_in(client, username)
        got = {p: client.get(p, follow_redirects=False).status_code for p in PAGES}
        assert got == pages, username


def test_store_staff_see_their_store_only(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    from omo.points import service as points
    from omo.points.schemas import PointsChange
    from omo.rewards import service as rewards
    from omo.rewards.schemas import RewardIn, RewardRedeem

    mid = people["member"]
    rewards.put_reward(uow, code="TOTE", data=RewardIn(name="帆布袋", points=10), actor="t")
    points.adjust(uow, member_id=mid, actor="t",
                  change=PointsChange(points=100, idempotency_key="s", reason="t"))  # fmt: skip
    for key, store in (("app-1", "TPE-101"), ("app-2", "KHH-201"), ("app-3", None)):
        rewards.redeem(uow, member_id=mid, code="TOTE", actor="app",
                       req=RewardRedeem(idempotency_key=key, channel="app", store=store))  # fmt: skip
    sign_in(client, "tpe")
    page = client.get(f"/ui/stores/{people['tpe']}")
    assert page.status_code == 200
    pickups = page.text.split('id="pickups"')[1].split("</table>")[0]
    assert pickups.count("帆布袋") == 1 and f"/ui/members/{mid}" in pickups  # not KHH's, nor sent
    other = client.get(f"/ui/stores/{people['khh']}")
    assert other.status_code == 403 and "another store" in other.text
    client.cookies.clear()
    sign_in(client, "boss")
    assert client.get(f"/ui/stores/{people['khh']}").status_code == 200


def test_search_is_a_post_with_csrf_and_finds_by_phone_email_name(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    page = sign_in(client, "mkt").get("/ui/members")
    token = _csrf(page.text)
    for query in [
        "0912345678",
        "+886 912 345 678",
        "MEI@example.com",
        "美玲",
        f"#{people['member']}",
    ]:
        r = client.post("/ui/members", data={"q": query, "csrf": token})
        assert f"/ui/members/{people['member']}" in r.text, query
    assert "查無會員" in client.post("/ui/members", data={"q": "0999000111", "csrf": token}).text
    # a name in letters is found whatever their case: SQLite's LIKE ignored it, PostgreSQL's
    # minded it, so "amy" found Amy Chen on one backend only
    amy = f.enrol(uow, name="Amy Chen", phone="0933-000-111").member.id
    for query in ("amy", "AMY CHEN", "chen"):
        r = client.post("/ui/members", data={"q": query, "csrf": token})
        assert f"/ui/members/{amy}" in r.text, query
    # without the token, or with another's, nothing is searched
    assert client.post("/ui/members", data={"q": "美玲"}).status_code == 403
    assert client.post("/ui/members", data={"q": "美玲", "csrf": "x" * 43}).status_code == 403


def test_member_page_masks_personal_data_for_analysts(
    client: TestClient, people: dict[str, int]
) -> None:
    page = sign_in(client, "mkt").get(f"/ui/members/{people['member']}")
    assert page.status_code == 200
    assert "mei@example.com" in page.text and "+886912345678" in page.text
    assert "陳美玲" in page.text
    # a new member: the whole of 銀卡's 10,000 still to spend, said in money
    assert "再消費 NT$10,000 即可升等銀卡" in page.text.split('id="member-tier-next"')[1]
    client.cookies.clear()
    masked = sign_in(client, "ana").get(f"/ui/members/{people['member']}").text
    assert "mei@example.com" not in masked and "m***@example.com" in masked
    assert "+886912345678" not in masked and "陳美玲" not in masked
    assert client.get("/ui/members/999999").status_code == 404


def test_member_page_says_each_coupon_s_state_in_the_page_s_language(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    from datetime import datetime
    from decimal import Decimal
    from zoneinfo import ZoneInfo

    from omo.coupons import service as coupons
    from omo.coupons.rules import CouponTemplate

    coupons.put_template(uow, code="SOON", template=CouponTemplate(
        name="週年慶", kind="amount_off", amount=Decimal(200),
        valid_from=datetime(2098, 6, 1, tzinfo=ZoneInfo("Asia/Taipei"))))  # fmt: skip
    coupons.issue(uow, template_code="SOON", member_ids=[people["member"]], key="soon")
    page = sign_in(client, "mkt").get(f"/ui/members/{people['member']}").text
    assert "<td>尚未生效</td>" in page
    client.get("/ui/lang/en?next=/ui/")
    english = client.get(f"/ui/members/{people['member']}").text
    assert "<td>not yet valid</td>" in english and "not_yet_valid" not in english


def test_member_page_says_what_keeps_the_level(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    """A member given silver by hand, with nothing spent: to keep it at review they need the
    6,000 the programme asks to keep silver."""
    from datetime import date, timedelta
    from decimal import Decimal

    from omo.tiers import grants
    from omo.tiers import service as tiers
    from omo.tiers.policy import DEFAULT_PROGRAMME

    levels = list(DEFAULT_PROGRAMME.levels)
    levels[1] = levels[1].model_copy(update={"keep_threshold": Decimal(6_000)})
    tiers.set_programme(uow, actor="t", programme=DEFAULT_PROGRAMME.model_copy(
        update={"levels": levels}))  # fmt: skip
    page = sign_in(client, "mkt").get(f"/ui/members/{people['member']}").text
    assert "續等尚差" not in page  # the base level is kept by anything
    grants.grant(uow, member_id=people["member"], actor="t", req=grants.TierGrant(
        level="silver", until=date.today() + timedelta(days=100), reason="VIP 名單"))  # fmt: skip
    page = client.get(f"/ui/members/{people['member']}").text
    assert "續等尚差: 6,000" in page, page.split('class="muted tier-keep"')[-1][:80]


def test_member_page_shows_the_referrals_on_either_side(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    from omo.referrals import service as referrals

    mid = people["member"]
    code = referrals.code_for(uow, member_id=mid, link="{code}").code
    friend = f.enrol(uow, phone="0922-000-222", referral_code=code).member.id
    f.post_order(uow, member_id=friend, lines=[{"sku": "X", "quantity": 1, "unit_price": "500"}])
    sign_in(client, "mkt")
    for who in (mid, friend):
        table = (
            client.get(f"/ui/members/{who}").text.split('id="referrals"')[1].split("</table>")[0]
        )
        assert f'#{mid}</a> → <a href="/ui/members/{friend}">#{friend}' in table
        assert "已獲回饋" in table
    other = f.enrol(uow, phone="0922-000-333").member.id
    lonely = client.get(f"/ui/members/{other}").text.split('id="referrals"')[1].split("</table>")[0]
    assert "—" in lonely and "→" not in lonely


def test_the_dashboard_shows_what_referrals_brought(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    from omo.referrals import service as referrals
    from omo.shared import clock

    code = referrals.code_for(uow, member_id=people["member"], link="{code}").code
    for n, phone in enumerate(("0922-000-401", "0922-000-402")):
        friend = f.enrol(uow, phone=phone, referral_code=code).member.id
        if n == 0:
            f.post_order(uow, member_id=friend, ordered_at=clock.now().isoformat(),
                         lines=[{"sku": "X", "quantity": 1, "unit_price": "500"}])  # fmt: skip
    page = sign_in(client, "mkt").get("/ui/").text
    tile = page.split('data-kpi="referrals">')[1].split("</div></div>")[0]
    assert tile.startswith("1 / 2</div>") and "50.0%" in tile and "100 點數" in tile


def test_the_dashboard_shows_tier_moves(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    """TIER-4: members moved up and down in the 30 days, beside the VIP share."""
    from omo.shared import clock

    f.post_order(uow, member_id=people["member"], ordered_at=clock.now().isoformat(),
                 lines=[{"sku": "X", "quantity": 1, "unit_price": "12000"}])  # fmt: skip
    page = sign_in(client, "mkt").get("/ui/").text
    moves = page.split('data-kpi="tier-moves">')[1].split("</div>")[0]
    assert moves == "升級 1 (100.0%) · 降級 0 (0.0%)"


def test_sign_out_needs_the_token_and_ends_the_session(
    client: TestClient, people: dict[str, int]
) -> None:
    page = sign_in(client, "boss").get("/ui/")
    assert client.post("/ui/logout").status_code == 403  # a link on another site cannot
    assert client.post("/ui/logout", data={"csrf": _csrf(page.text)}).status_code == 200
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_languages_and_formats(client: TestClient, people: dict[str, int]) -> None:
    sign_in(client, "boss")
    zh = client.get("/ui/").text
    assert "儀表板" in zh and 'lang="zh-TW"' in zh
    client.get("/ui/lang/en?next=/ui/")
    en = client.get("/ui/").text
    assert "Dashboard" in en and 'lang="en"' in en and "NT$" in en
    client.get("/ui/lang/zh-CN?next=/ui/")
    assert "仪表板" in client.get("/ui/").text
    # ?next= only goes to this site
    r = client.get("/ui/lang/en?next=//evil.example/x", follow_redirects=False)
    assert r.headers["location"] == "/ui/"


def test_names_and_notes_are_rendered_escaped(client: TestClient, uow: UnitOfWork) -> None:
    users.create_user(uow, username="boss", password=PASSWORD, role="admin", store_code=None)
    evil = f.enrol(uow, name="<script>alert(1)</script>", phone="0911-111-111").member.id
    html = sign_in(client, "boss").get(f"/ui/members/{evil}").text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_sign_in_is_refused_after_five_wrong_passwords(
    client: TestClient, people: dict[str, int]
) -> None:
    """The sixth try within 15 minutes is refused even with the right password, and so is a
    name that does not exist (the refusal tells nothing of who exists); a quarter of an hour
    after the first wrong one, the right password signs in."""
    from datetime import UTC, datetime, timedelta

    from omo.shared import clock

    t0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    clock.set_clock(lambda: t0)
    token = _csrf(client.get("/ui/login").text)

    def attempt(name: str, password: str) -> int:
        form = {"username": name, "password": password, "csrf": token}
        return client.post("/ui/login", data=form, follow_redirects=False).status_code

    for name in ("boss", "nobody"):
        assert [attempt(name, "wrong-password") for _ in range(5)] == [401] * 5
    assert attempt("boss", PASSWORD) == 429 and attempt("nobody", PASSWORD) == 429
    page = client.post("/ui/login", data={"username": "boss", "password": PASSWORD,
                                          "csrf": token})  # fmt: skip
    assert "密碼錯誤次數過多" in page.text
    assert attempt("mkt", PASSWORD) == 303  # another name signs in
    client.cookies.clear()
    token = _csrf(client.get("/ui/login").text)
    clock.set_clock(lambda: t0 + timedelta(minutes=15))
    assert attempt("boss", PASSWORD) == 303


def test_users_are_validated(uow: UnitOfWork) -> None:
    from omo.shared.errors import DomainError

    bad = [
        dict(username="a b", password=PASSWORD, role="admin", store_code=None),
        dict(username="x", password="short", role="admin", store_code=None),
        dict(username="x", password=PASSWORD, role="king", store_code=None),
        dict(username="x", password=PASSWORD, role="staff", store_code=None),
        dict(username="x", password=PASSWORD, role="manager", store_code=None),
        dict(username="x", password=PASSWORD, role="admin", store_code="TPE-101"),
    ]
    for kw in bad:
        with pytest.raises(DomainError):
            users.create_user(uow, **kw)  # type: ignore[arg-type]
    assert users.authenticate(uow, username="x", password=PASSWORD) is None


def test_role_grants() -> None:
    assert may("admin", Permission.SETTINGS)
    assert not may("analyst", Permission.PII)
    assert not may("staff", Permission.ALL_STORES) and may("staff", Permission.POS)
    assert not may("staff", Permission.APPROVE_REFUNDS) and may("manager", Permission.POS)
    assert may("manager", Permission.APPROVE_REFUNDS) and not may("manager", Permission.SETTINGS)
    assert not may("nobody", Permission.DASHBOARD)
    assert {r.value for r in Role} == {"admin", "marketer", "staff", "manager", "analyst"}


def test_the_till_hands_over_a_reward_once(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    from decimal import Decimal

    from omo.points import service as points
    from omo.points.schemas import PointsChange
    from omo.rewards import service as rewards
    from omo.rewards.schemas import RewardIn

    mid = people["member"]
    rewards.put_reward(uow, code="TOTE", data=RewardIn(name="帆布袋", points=300, stock=1),
                       actor="t")  # fmt: skip
    rewards.put_reward(uow, code="BIKE", data=RewardIn(name="單車", points=90_000), actor="t")
    points.adjust(uow, member_id=mid, actor="t",
                  change=PointsChange(points=700, idempotency_key="s", reason="t"))  # fmt: skip
    sign_in(client, "tpe")
    shown = client.post("/ui/pos", data={"csrf": _csrf(client.get("/ui/pos").text),
                                         "action": "lookup", "q": f"#{mid}"}).text  # fmt: skip
    offered = shown.split('id="pos-rewards"')[1].split("</table>")[0]
    assert "帆布袋" in offered and offered.count('value="redeem"') == 1  # not the bike
    key = re.search(r'name="redeem_key" value="([^"]+)"', offered)
    assert key
    press = {"csrf": _csrf(shown), "action": "redeem", "member_id": str(mid), "q": f"#{mid}",
             "reward": "TOTE", "redeem_key": key.group(1)}  # fmt: skip
    for _ in range(2):  # a double press hands over one
        done = client.post("/ui/pos", data=press)
        assert done.status_code == 200 and 'id="pos-redeemed"' in done.text, done.text[:300]
    assert points.summary(uow, member_id=mid, history=0).available == 400
    [made] = rewards.redemptions_of(uow, member_id=mid, limit=5)
    assert (made.store, made.channel, made.fulfilled_store) == ("TPE-101", "pos", "TPE-101")
    assert made.fulfilled_at is not None  # handed over at the till: nothing left owed
    again = client.post("/ui/pos", data={**press, "redeem_key": "UI-R-other"})
    assert again.status_code == 422 and "庫存不足" in again.text  # the last one went
    assert rewards.get_reward(uow, code="TOTE").stock == 0
    # a partner's reward is not handed over: the till shows the voucher to use at the partner
    rewards.put_reward(uow, code="COFFEE", data=RewardIn(name="咖啡", kind="partner",
                       partner="FamilyMart", points=100), actor="t")  # fmt: skip
    done = client.post("/ui/pos", data={**press, "reward": "COFFEE", "redeem_key": "UI-R-cafe"})
    voucher = re.search(r'id="pos-voucher">([0-9A-Z-]+)<', done.text)
    assert done.status_code == 200 and voucher, done.text[:300]
    cafe = rewards.redemptions_of(uow, member_id=mid, limit=5)[0]
    assert (cafe.voucher, cafe.fulfilled_at) == (voucher.group(1), None)
    # 點數加價購: offered as points and money; handed over, the till says what to collect
    rewards.put_reward(uow, code="CUP", data=RewardIn(name="隨行杯", points=100, cash=Decimal(99)),
                       actor="t")  # fmt: skip
    shown = client.post("/ui/pos", data={**press, "action": "lookup"}).text
    assert "<td>隨行杯</td><td>100 + NT$99</td>" in shown
    done = client.post("/ui/pos", data={**press, "reward": "CUP", "redeem_key": "UI-R-cup"})
    assert '<strong id="pos-collect">請收取加價金額 NT$99</strong>' in done.text, done.text[:300]


def test_the_till_hands_over_what_the_app_redeemed(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    from omo.points import service as points
    from omo.points.schemas import PointsChange
    from omo.rewards import service as rewards
    from omo.rewards.schemas import RewardIn, RewardRedeem

    mid, other = people["member"], f.enrol(uow, name="林小明", phone="0922-000-111").member.id
    rewards.put_reward(uow, code="TOTE", data=RewardIn(name="帆布袋", points=100), actor="t")
    for who, key in ((mid, "app-1"), (other, "app-2")):
        points.adjust(uow, member_id=who, actor="t",
                      change=PointsChange(points=500, idempotency_key=f"s{who}", reason="t"))  # fmt: skip
        rewards.redeem(uow, member_id=who, code="TOTE", actor="app",
                       req=RewardRedeem(idempotency_key=key, channel="app"))  # fmt: skip
    sign_in(client, "tpe")
    shown = client.post("/ui/pos", data={"csrf": _csrf(client.get("/ui/pos").text),
                                         "action": "lookup", "q": f"#{mid}"}).text  # fmt: skip
    owed = shown.split('id="pos-owed"')[1].split("</table>")[0]
    assert 'name="redemption" value="app-1"' in owed and "app-2" not in owed
    press = {"csrf": _csrf(shown), "action": "hand_over", "member_id": str(mid), "q": f"#{mid}",
             "redemption": "app-1"}  # fmt: skip
    done = client.post("/ui/pos", data=press)
    assert done.status_code == 200 and 'id="pos-handed"' in done.text, done.text[:300]
    assert 'value="app-1"' not in done.text.split('id="pos-owed"')[1].split("</table>")[0]
    [given] = rewards.redemptions_of(uow, member_id=mid, limit=5)
    assert (given.fulfilled_store, given.channel) == ("TPE-101", "app")
    for bad in ({**press}, {**press, "redemption": "app-2"}):  # again; another member's
        r = client.post("/ui/pos", data=bad)
        assert r.status_code == 422 and "這不是此會員待領的兌換品" in r.text
    assert rewards.redemptions_of(uow, member_id=other, limit=5)[0].fulfilled_at is None


def test_the_till_enrols_a_customer_with_a_friends_code(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    from omo.members import service as members
    from omo.referrals import service as referrals

    mid = people["member"]
    code = referrals.code_for(uow, member_id=mid, link="{code}").code
    sign_in(client, "tpe")
    missing = client.post("/ui/pos", data={"csrf": _csrf(client.get("/ui/pos").text),
                                           "action": "lookup", "q": "0955-123-456"}).text  # fmt: skip
    assert 'id="pos-join"' in missing and 'name="phone" value="0955-123-456"' in missing
    join = {"csrf": _csrf(missing), "action": "enrol", "phone": "0955-123-456", "name": "陳小華",
            "email": "", "consent_sms": "1",
            # the friend's link, as the scanner reads it
            "referral_code": f"https://shop.example.com/join?ref={code.lower()}"}  # fmt: skip
    before = dump(uow.engine)
    for bad, words in (({"phone": ""}, "請輸入顧客的手機號碼"), ({"phone": "12"}, "phone"),
                       ({"referral_code": "RNOPE"}, "查無此推薦碼"),
                       ({"phone": "0912-345-678"}, "此手機號碼已是會員")):  # fmt: skip
        r = client.post("/ui/pos", data={**join, **bad})
        assert r.status_code == 422 and words in r.text and 'id="pos-join"' in r.text, (
            bad,
            r.text[:400],
        )
    assert dump(uow.engine) == before  # refused: nothing changed
    joined = client.post("/ui/pos", data=join)
    assert joined.status_code == 200 and 'id="pos-joined"' in joined.text, joined.text[:400]
    assert "陳小華" in joined.text and 'id="basket"' in joined.text  # on to the sale
    new = int(re.search(r'name="member_id" value="(\d+)"', joined.text).group(1))  # type: ignore[union-attr]
    with uow.read() as s:
        member = members.get_member(s, new)
        assert (member.name, member.join_channel) == ("陳小華", "pos")
        assert member.join_store_id is not None
        assert {c.channel: c.granted for c in members.consents_of(s, new)} == {"sms": True}
    referred = referrals.code_for(uow, member_id=mid, link="{code}").referred
    assert [(r.referee_id, r.status) for r in referred] == [(new, "pending")]


def test_the_till_takes_a_return(
    client: TestClient, people: dict[str, int], uow: UnitOfWork, engine: sa.Engine
) -> None:
    """A web order brought back to a store: found by its receipt, some units given back, then
    the rest; a second press gives back once, and every refusal leaves the order as it was."""
    from omo.commerce.models import Order, OrderRefund

    order = f.post_order(uow, member_id=people["member"], channel="web", external_id="W-100",
                         lines=[{"sku": "A", "quantity": 2, "unit_price": "300"},
                                {"sku": "B", "quantity": 1, "unit_price": "500"}]).id  # fmt: skip
    token = _csrf(sign_in(client, "tpe").get("/ui/pos").text)
    # the member's last orders at the till, each with a way to its return
    member = client.post("/ui/pos", data={"csrf": token, "action": "lookup",
                                          "q": f"#{people['member']}"}).text  # fmt: skip
    recent = member.split('id="pos-recent"')[1].split("</table>")[0]
    assert 'name="receipt" value="W-100"' in recent and 'value="find_order"' in recent
    shown = client.post("/ui/pos", data={"csrf": token, "action": "find_order", "channel": "web",
                                         "receipt": " W-100 "})  # fmt: skip
    assert shown.status_code == 200 and 'id="pos-order"' in shown.text, shown.text[:300]
    assert 'name="ret1"' in shown.text and 'name="ret2"' in shown.text
    each = re.findall(r'class="pos-paid-each">([^<]+)<', shown.text)
    assert each == ["NT$300", "NT$500"], each  # what one unit of each line gives back
    key = re.search(r'name="refund_key" value="([^"]+)"', shown.text)
    assert key is not None
    press = {"csrf": token, "action": "refund", "order_id": str(order), "refund_key": key[1],
             "ret1": "1", "ret2": "", "reason": "太大"}  # fmt: skip

    def refunds() -> list[tuple[str, str | None]]:
        with uow.read() as s:
            rows = s.query(OrderRefund).order_by(OrderRefund.id).all()
            # given at the staff's till: TPE-101's day pays it out, though the order has no store
            assert {r.store_id for r in rows} <= {people["tpe"]}
            return [(str(r.amount), r.actor) for r in rows]

    before = dump(engine)
    for bad, words in [
        ({"ret1": "3"}, "第 1 項：尚可退 2 件"),
        ({"ret1": "x"}, "請輸入整數"),
        ({"ret1": "-1"}, "0 以上"),
        ({"ret1": "0"}, "請選擇退回哪些商品"),
        ({"refund_key": ""}, "請先查詢訂單"),
        ({"order_id": "999999"}, "查無訂單 999999"),
    ]:
        r = client.post("/ui/pos", data={**press, **bad})
        assert r.status_code == 422 and words in r.text, (bad, r.text[:400])
        if bad.get("order_id") is None:
            assert 'id="pos-order"' in r.text  # the order stays up to correct the choice
    for bad, words in [({"receipt": "W-999"}, "查無 web 通路的訂單 W-999"),
                       ({"receipt": ""}, "請輸入或掃描收據上的訂單編號"),
                       ({"channel": "fax"}, "未知的通路 fax")]:  # fmt: skip
        r = client.post("/ui/pos", data={"csrf": token, "action": "find_order", "channel": "web",
                                         "receipt": "W-100", **bad})  # fmt: skip
        assert r.status_code == 422 and words in r.text, (bad, r.text[:400])
    assert dump(engine) == before

    done = client.post("/ui/pos", data=press)
    assert done.status_code == 200 and 'id="pos-refunded"' in done.text, done.text[:400]
    assert refunds() == [("300.00", "ui:tpe")]
    assert client.post("/ui/pos", data=press).status_code == 200  # pressed again
    assert refunds() == [("300.00", "ui:tpe")]
    rest_key = re.search(r'name="refund_key" value="([^"]+)"', done.text)
    assert rest_key is not None and rest_key[1] != key[1]
    rest = client.post("/ui/pos", data={**press, "refund_key": rest_key[1], "whole": "1"})
    assert rest.status_code == 200 and 'id="pos-nothing-left"' in rest.text
    assert refunds() == [("300.00", "ui:tpe"), ("800.00", "ui:tpe")]
    with uow.read() as s:
        assert s.get_one(Order, order).status == "refunded"
    # the store's day: its till paid both out, for a sale that was not its own (跨店退貨)
    today = client.get(f"/ui/stores/{people['tpe']}").text
    paid_out = today.split('id="day-refunds">')[1].split("</td>")[0]
    assert "2 · NT$1,100" in paid_out and "其中為他店銷售退款：2 筆 · NT$1,100" in paid_out
    listed = today.split('id="day-refund-list"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>.*?</tr>", listed, re.S)
    assert len(rows) == 2 and all("W-100" in row and "ui:tpe" in row for row in rows)
    assert "NT$300" in rows[0] and "NT$800" in rows[1] and "（整筆剩餘）" in rows[1]
    # and the back office's clearing: the web shop owes TPE-101 what its till paid out
    client.cookies.clear()
    sign_in(client, "boss")
    ledger = client.get("/ui/points").text
    owed = ledger.split('id="refunds-clearing">')[1].split("</table>")[0]
    link = ledger.split('id="refunds-clearing-csv"')[0].rsplit('href="', 1)[1].split('"')[0]
    sheet = client.get(link.replace("&amp;", "&"))
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    assert (
        sheet.text
        == "sold_at,refunded_at,refunds,amount\r\n,TPE-101,2,1100.00\r\nALL,,2,1100.00\r\n"
    )
    assert re.findall(r"<td>(.*?)</td>", owed)[:4] == [
        "無門市（宅配）",
        "TPE-101",
        "2",
        "NT$1,100",
    ]


def _return_whole_at_till(
    client: TestClient, receipt: str, order_id: int, weighed: list[str] | None = None
) -> str:
    """Staff of TPE-101 find a web order by its receipt and give it all back: the page.
    `weighed`: gets what the till said when it weighed the return first."""
    token = _csrf(sign_in(client, "tpe").get("/ui/pos").text)
    shown = client.post("/ui/pos", data={"csrf": token, "action": "find_order",
                                         "channel": "web", "receipt": receipt})  # fmt: skip
    key = re.search(r'name="refund_key" value="([^"]+)"', shown.text)
    assert key is not None
    press = {"csrf": token, "action": "refund", "whole": "1", "order_id": str(order_id),
             "refund_key": key[1]}  # fmt: skip
    if weighed is not None:
        page = client.post("/ui/pos", data={**press, "weigh": "1"}).text
        weighed.append(page.split('id="pos-weighed"')[1].split("</p>")[0])
    done = client.post("/ui/pos", data=press)
    assert done.status_code == 200 and 'id="pos-refunded"' in done.text, done.text[:400]
    return done.text


def test_the_till_says_when_a_return_finds_its_points_spent(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    """The points a returned order earned were spent since: the till says how many were
    written off and what they were worth, for the store to settle by its policy."""
    from datetime import timedelta

    from omo.points import service as points
    from omo.points.schemas import PointsChange
    from omo.shared import clock

    mid = people["member"]
    sold = f.post_order(uow, member_id=mid, channel="web", external_id="W-200",
                        lines=[{"sku": "A", "quantity": 1, "unit_price": "1200"}])  # fmt: skip
    order, later = sold.id, sold.ordered_at + timedelta(days=10)
    clock.set_clock(lambda: later)  # past the return window: spendable
    try:
        held = points.summary(uow, member_id=mid).available
        assert held >= 12
        points.redeem(uow, member_id=mid, actor="t",
                      change=PointsChange(points=held, idempotency_key="all"))  # fmt: skip
        done = _return_whole_at_till(client, "W-200", order)
        assert "會員已用掉此訂單回饋的 12 點，已予註銷，價值 NT$12" in done
    finally:
        clock.reset_clock()


def test_the_till_says_when_a_return_withdraws_a_spend_coupon(
    client: TestClient, people: dict[str, int], uow: UnitOfWork, settings: Settings
) -> None:
    """單筆滿3000送100元券＋200點 on the web shop: the coupon given for a 3,000 order, unused,
    is withdrawn and the points taken back when the order comes back at a till, and the till
    says so."""
    from omo.commerce.returns_policy import Policy, set_policy
    from omo.coupons import service as coupons
    from omo.coupons.rules import CouponTemplate
    from omo.coupons.schemas import BasketIn
    from omo.journeys import service as journeys

    coupons.put_template(uow, code="NEXT100", template=CouponTemplate(
        name="滿額贈券", kind="amount_off", amount=Decimal(100), per_member_limit=5))  # fmt: skip
    journeys.save(uow, key="spend", actor="t", raw={
        "name": "滿3000送券", "control_share": 0,
        "trigger": {"kind": "order_spend", "min_total": "3000", "channels": ["web"]},
        "steps": [{"type": "issue_coupon", "template": "NEXT100"},
                  {"type": "award_points", "points": 200}]})  # fmt: skip
    journeys.set_enabled(uow, key="spend", enabled=True)
    mid = people["member"]
    sold = f.post_order(uow, member_id=mid, channel="web", external_id="W-220",
                        lines=[{"sku": "A", "quantity": 1, "unit_price": "3000"}])  # fmt: skip
    now = settings.model_copy(update={"outbox_settle_s": 0})
    for _ in range(2):  # enter, then take the step
        journeys.run_jobs(uow, settings=now, adapters={}, deliver=False)
    assert [c.status for c in coupons.member_coupons(uow, member_id=mid)
            if c.template == "NEXT100"] == ["active"]  # fmt: skip
    weighed: list[str] = []
    done = _return_whole_at_till(client, "W-220", sold.id, weighed)
    assert "所贈優惠券將收回：1 張" in weighed[0] and "所贈點數將扣回：200 點" in weighed[0], (
        weighed
    )
    said = done.split('id="pos-journey-coupons"')[1].split("</p>")[0]
    assert "因此訂單或其所升等級而贈送、尚未使用的優惠券已收回：1 張" in said, said
    said = done.split('id="pos-journey-points"')[1].split("</p>")[0]
    assert "因此訂單或其所升等級而贈送的點數已扣回：200 點" in said and "無法" not in said, said
    assert [c.status for c in coupons.member_coupons(uow, member_id=mid)
            if c.template == "NEXT100"] == ["void"]  # fmt: skip
    # under a policy that charges a used one: the member spends the next order's coupon first
    set_policy(uow, policy=Policy(journey_coupons_used="charge"), actor="t")
    again = f.post_order(uow, member_id=mid, channel="web", external_id="W-221",
                         lines=[{"sku": "A", "quantity": 1, "unit_price": "3000"}])  # fmt: skip
    for _ in range(2):
        journeys.run_jobs(uow, settings=now, adapters={}, deliver=False)
    code = next(c.code for c in coupons.member_coupons(uow, member_id=mid)
                if c.status == "active" and c.template == "NEXT100")  # fmt: skip
    coupons.redeem(uow, code=code, member_id=mid, key="use", basket=BasketIn.model_validate(
        {"channel": "web", "lines": [{"sku": "B", "quantity": 1, "unit_price": "300"}]}))  # fmt: skip
    done = _return_whole_at_till(client, "W-221", again.id, weighed)
    assert "NT$100 因會員已使用此訂單或其等級所贈的優惠券而自退款扣除" in weighed[1], weighed
    said = done.split('id="pos-journey-coupons"')[1].split("</p>")[0]
    assert "會員已使用者折抵 NT$100：已自退款中扣除" in said and "張已收回" not in said, said
    assert "NT$2,900" in done.split('id="pos-refunded"')[1].split("</p>")[0]
    page = sign_in(client, "boss").get("/ui/settings").text
    shown = page.split('id="returns-journey-coupons"')
    assert "其折抵金額自退款中扣除" in shown[1].split("</span>")[0]
    said = page.split('id="returns-journey-points"')[1].split("</span>")[0]
    assert "由旅程贈送的點數，隨退貨扣回" in said, said


def test_the_till_says_what_a_store_that_charges_spent_points_keeps_back(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    """The same under a returns policy that charges them: the settings page says so, and the
    till says the NT$12 is kept back from the money."""
    from datetime import timedelta

    from omo.commerce.returns_policy import Policy, set_policy
    from omo.points import service as points
    from omo.points.schemas import PointsChange
    from omo.shared import clock

    set_policy(uow, policy=Policy(spent_points="charge"), actor="t")
    shown = sign_in(client, "boss").get("/ui/settings").text.split('id="returns-coupons"')[1]
    assert "其價值自退款中扣除" in shown.split("</p>")[0]
    client.cookies.clear()
    mid = people["member"]
    sold = f.post_order(uow, member_id=mid, channel="web", external_id="W-210",
                        lines=[{"sku": "A", "quantity": 1, "unit_price": "1200"}])  # fmt: skip
    later = sold.ordered_at + timedelta(days=10)
    clock.set_clock(lambda: later)
    try:
        held = points.summary(uow, member_id=mid).available
        points.redeem(uow, member_id=mid, actor="t",
                      change=PointsChange(points=held, idempotency_key="all"))  # fmt: skip
        done = _return_whole_at_till(client, "W-210", sold.id)
        said = done.split('id="pos-points-short"')[1].split("</p>")[0]
        assert "會員已用掉此訂單回饋的 12 點：其價值 NT$12 已自退款中扣除" in said, said
        assert "NT$1,188" in done.split('id="pos-refunded"')[1].split("</p>")[0]
    finally:
        clock.reset_clock()


def test_the_till_says_when_a_return_takes_a_level_back(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    from omo.coupons import service as coupons
    from omo.coupons.rules import CouponTemplate
    from omo.tiers import gifts
    from omo.tiers import service as tiers
    from omo.tiers.policy import DEFAULT_PROGRAMME, TierProgramme

    coupons.put_template(uow, code="GOLDGIFT", template=CouponTemplate(
        name="金卡月禮", kind="amount_off", amount=Decimal(50), per_member_limit=100))  # fmt: skip
    data = DEFAULT_PROGRAMME.model_dump(mode="json")
    data["levels"][-2]["benefits"]["monthly_gift"] = "GOLDGIFT"
    tiers.set_programme(uow, programme=TierProgramme.model_validate(data), actor="t")
    mid = f.enrol(uow, name="林大方", phone="0933-100-200").member.id
    order = f.post_order(uow, member_id=mid, channel="web", external_id="W-300",
                         lines=[{"sku": "A", "quantity": 1, "unit_price": "30000"}]).id  # fmt: skip
    assert tiers.member_tier(uow, member_id=mid).level == "gold"
    assert gifts.give_monthly(uow).holding == {"GOLDGIFT": 1}
    done = _return_whole_at_till(client, "W-300", order)
    said = done.split('id="pos-tier-lowered"')[1].split("</p>")[0]
    assert "這些商品所升的等級已取消，會員等級改為 一般會員" in said
    assert "該等級尚未使用的每月禮券已收回：1 張" in said, said
    assert tiers.member_tier(uow, member_id=mid).level == "member"


def test_the_till_says_when_a_return_claws_a_coupon_back(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    """Under a policy that claws back, returning the goods that made a 滿千折百 reach its
    threshold: the till says which coupon and how much is kept back; the settings page says
    which policy holds."""
    from omo.checkout import service as checkout
    from omo.checkout.schemas import CommitRequest
    from omo.commerce import returns_policy
    from omo.coupons import service as coupons
    from omo.coupons.rules import CouponTemplate

    page = sign_in(client, "boss").get("/ui/settings").text
    said = page.split('id="returns-coupons"')[1].split("</p>")[0]
    assert "所留商品仍按比例保有折扣" in said and "整筆訂單退款時，優惠券才可再次使用" in said
    assert "滿額贈點依退貨商品所占比例扣回" in said and "已使用者不予追回" in said
    token = _csrf(page)
    set_it = {"csrf": token, "body": '{"coupon_threshold": "claw_back", '
              '"coupons_back": "with_their_goods", "spend_bonus": "threshold"}'}  # fmt: skip
    bad = client.post("/ui/settings/returns", data={**set_it, "body": '{"coupon_threshold": "x"}'})
    assert bad.status_code == 422 and "returns: coupon_threshold" in bad.text
    assert client.post("/ui/settings/returns", data=set_it).status_code == 200
    shown = client.get("/ui/settings").text.split('id="returns-coupons"')[1].split("</p>")[0]
    assert "自退款中扣回該券在所留商品上的折扣" in shown and "該優惠券即可再次使用" in shown
    assert "未達時一次全數扣回" in shown
    client.cookies.clear()
    assert returns_policy.get_policy(uow).policy.coupon_threshold == "claw_back"
    assert returns_policy.get_policy(uow).policy.spend_bonus == "threshold"

    mid = people["member"]
    coupons.put_template(uow, code="K100", template=CouponTemplate(
        name="滿千折百", kind="spend_get_off", spend=Decimal(1000), amount=Decimal(100)))  # fmt: skip
    code = coupons.issue(uow, template_code="K100", member_ids=[mid], key="k").issued[0].code
    sale = checkout.commit(uow, currency="TWD", region="TW", principal=f.ADMIN,
                           req=CommitRequest.model_validate({
        "channel": "pos", "store": "TPE-101", "member_id": mid, "external_id": "P-900",
        "coupon_codes": [code], "lines": [{"sku": "A", "quantity": 1, "unit_price": "700"},
                                          {"sku": "B", "quantity": 1, "unit_price": "500"}]}))  # fmt: skip
    assert [c.applied for c in sale.price.coupons] == [True]
    token = _csrf(sign_in(client, "tpe").get("/ui/pos").text)
    found = client.post("/ui/pos", data={"csrf": token, "action": "find_order",
                                         "channel": "pos", "receipt": "P-900"}).text  # fmt: skip
    key = re.search(r'name="refund_key" value="([^"]+)"', found)
    assert key is not None
    press = {"csrf": token, "action": "refund", "ret1": "", "ret2": "1",
             "order_id": str(sale.order.id), "refund_key": key[1]}  # fmt: skip
    before = dump(uow.engine)
    weighed = client.post("/ui/pos", data={**press, "weigh": "1"}).text  # before pressing
    said = weighed.split('id="pos-weighed"')[1].split("</p>")[0]
    assert "這些商品將退款 NT$" in said and "所留商品已未達 滿千折百 的使用門檻" in said, said
    assert 'name="ret2" value="1"' in weighed and f'value="{key[1]}"' in weighed
    assert dump(uow.engine) == before
    refused = client.post("/ui/pos", data={**press, "ret2": "", "weigh": "1"})
    assert refused.status_code == 422 and "請選擇退回哪些商品" in refused.text
    done = client.post("/ui/pos", data=press).text
    said = done.split('id="pos-coupon-clawed-back"')[1].split("</p>")[0]
    assert "所留商品已未達 滿千折百 的使用門檻" in said and "已自退款中扣回" in said, said


def test_a_return_over_the_policy_needs_a_manager_at_the_till(
    client: TestClient, people: dict[str, int], uow: UnitOfWork, engine: sa.Engine
) -> None:
    """The admin sets the returns policy on the settings page; a staff member's refund over it
    waits for a manager of their store, who types their name and password at the till; a
    wrong one, another store's manager or a colleague changes nothing; a manager signed in
    approves their own."""
    from omo.commerce.models import OrderRefund

    for name, role, at in (("mgr", "manager", "TPE-101"), ("kmgr", "manager", "KHH-201")):
        users.create_user(uow, username=name, password=PASSWORD, role=role, store_code=at)
    page = sign_in(client, "boss").get("/ui/settings").text
    assert "各收銀台皆可自行退款" in page.split('id="returns-policy"')[1]
    set_it = {"csrf": _csrf(page), "body": '{"approval_over": "500", "approval_after_days": 30}'}
    bad = client.post("/ui/settings/returns", data={**set_it, "body": '{"approval_over": 0}'})
    assert bad.status_code == 422 and "returns: approval_over" in bad.text
    assert (
        client.post("/ui/settings/returns", data=set_it, follow_redirects=False).status_code == 303
    )
    shown = client.get("/ui/settings").text.split('id="returns-policy"')[1].split("</p>")[0]
    assert "NT$500" in shown and "購買超過 30 天" in shown
    client.cookies.clear()

    order = f.post_order(uow, member_id=people["member"], channel="web", external_id="W-200",
                         lines=[{"sku": "A", "quantity": 2, "unit_price": "300"}]).id  # fmt: skip
    token = _csrf(sign_in(client, "tpe").get("/ui/pos").text)
    found = client.post("/ui/pos", data={"csrf": token, "action": "find_order", "channel": "web",
                                         "receipt": "W-200"}).text  # fmt: skip
    assert 'id="pos-approval"' in found and 'id="pos-approval" open' not in found
    key = re.search(r'name="refund_key" value="([^"]+)"', found)
    assert key is not None
    press = {"csrf": token, "action": "refund", "order_id": str(order), "refund_key": key[1],
             "ret1": "2", "reason": "瑕疵"}  # fmt: skip
    before = dump(engine)
    held = client.post("/ui/pos", data=press)
    assert held.status_code == 422 and "退款超過 NT$500 須經店長核准" in held.text
    assert 'id="pos-approval" open' in held.text and 'name="ret1" value="2"' in held.text
    for who, password in (("mgr", "wrong-password"), ("kmgr", PASSWORD), ("tpe", PASSWORD),
                          ("nobody", PASSWORD)):  # fmt: skip
        r = client.post("/ui/pos", data={**press, "approver": who, "approver_password": password})
        assert r.status_code == 422 and "此門市沒有符合該帳號與密碼的店長" in r.text, who
    assert dump(engine) == before
    counted = dump(engine, logs=True)["sign_in_failures"]  # the wrong passwords, for the throttle
    assert [row[1] for row in counted] == ["mgr", "nobody"]
    done = client.post("/ui/pos", data={**press, "approver": "mgr", "approver_password": PASSWORD})
    assert done.status_code == 200 and 'id="pos-refunded"' in done.text, done.text[:400]

    def refunds() -> list[tuple[str, str | None, str | None]]:
        with uow.read() as s:
            return [(str(r.amount), r.actor, r.approved_by)
                    for r in s.query(OrderRefund).order_by(OrderRefund.id)]  # fmt: skip

    assert refunds() == [("600.00", "ui:tpe", "ui:mgr")]
    # a manager at the till approves their own, and sees no approval to ask for
    client.cookies.clear()
    other = f.post_order(uow, member_id=people["member"], channel="web", external_id="W-201",
                         lines=[{"sku": "A", "quantity": 2, "unit_price": "300"}]).id  # fmt: skip
    token = _csrf(sign_in(client, "mgr").get("/ui/pos").text)
    found = client.post("/ui/pos", data={"csrf": token, "action": "find_order", "channel": "web",
                                         "receipt": "W-201"}).text  # fmt: skip
    assert 'id="pos-approval"' not in found
    key = re.search(r'name="refund_key" value="([^"]+)"', found)
    assert key is not None
    own = client.post("/ui/pos", data={**press, "csrf": token, "order_id": str(other),
                                       "refund_key": key[1], "whole": "1"})  # fmt: skip
    assert own.status_code == 200, own.text[:400]
    assert refunds()[-1] == ("600.00", "ui:mgr", "ui:mgr")


def test_an_admin_adjusts_points_and_gives_a_level_from_the_member_page(
    client: TestClient, people: dict[str, int], uow: UnitOfWork, engine: sa.Engine
) -> None:
    """Customer service: points given with a reason the member sees (a double press gives
    once), a level given through a day; refusals change nothing; only admins see the forms."""
    from datetime import date, timedelta

    from omo.points import service as points
    from omo.tiers import service as tiers

    mid = people["member"]
    page = sign_in(client, "boss").get(f"/ui/members/{mid}").text
    assert 'id="adjust-points"' in page and 'id="give-level"' in page
    token = _csrf(page)
    adjust_id = re.search(r'name="adjust_id" value="([^"]+)"', page)
    assert adjust_id is not None
    give = {"csrf": token, "adjust_id": adjust_id[1], "points": "+120", "reason": "包裹延誤補償"}
    for _ in range(2):  # pressed twice
        r = client.post(f"/ui/members/{mid}/points", data=give, follow_redirects=False)
        assert r.status_code == 303, r.text[:300]
    assert points.summary(uow, member_id=mid).available == 120
    shown = client.get(f"/ui/members/{mid}").text.split('id="points-history"')[1]
    assert "包裹延誤補償" in shown.split("</table>")[0]
    until = (date.today() + timedelta(days=300)).isoformat()
    level = {"csrf": token, "level": "gold", "until": until, "reason": "VIP in the old programme"}
    r = client.post(f"/ui/members/{mid}/tier", data=level, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    assert tiers.member_tier(uow, member_id=mid).level == "gold"
    assert "granted until" in client.get(f"/ui/members/{mid}").text.split('id="tier-history"')[1]

    before = dump(engine)
    fresh = {**give, "adjust_id": "another-press"}
    for path, bad, words in [
        ("points", {**fresh, "points": "lots"}, "點數：請輸入整數"),
        ("points", {**fresh, "points": "0"}, "調整須改變點數餘額"),
        ("points", {**fresh, "reason": ""}, "請說明原因"),
        ("points", {**fresh, "points": "-500"}, "要用 500 點，可用 120 點"),
        ("points", {**fresh, "points": "99999999"}, "points"),
        ("points", {**fresh, "adjust_id": ""}, "請重新載入會員頁面"),
        ("tier", {**level, "until": "31/01/2027"}, "期限：請以日期欄位選擇日期"),
        ("tier", {**level, "level": "platinum"}, "no level"),
        ("tier", {**level, "reason": ""}, "reason"),
        ("tier", {**level, "level": "silver"}, "holds"),
    ]:
        r = client.post(f"/ui/members/{mid}/{path}", data=bad)
        assert r.status_code == 422 and words in r.text, (bad, r.text[:400])
    assert client.post(f"/ui/members/{mid}/points", data={**fresh, "csrf": ""}).status_code == 403
    assert dump(engine) == before

    client.post("/ui/logout", data={"csrf": token})
    marketer = sign_in(client, "mkt")
    page = marketer.get(f"/ui/members/{mid}").text
    assert 'id="adjust-points"' not in page and 'id="give-level"' not in page
    before = dump(engine)  # signing in is recorded
    denied = marketer.post(f"/ui/members/{mid}/points", data={**fresh, "csrf": _csrf(page)})
    assert denied.status_code == 403
    assert dump(engine) == before


def test_a_user_of_the_longest_name_leaves_it_on_what_they_do(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    """A username may be 64 characters, and the pages record `ui:<username>` as who did it: 67,
    where the ledgers, refunds, levels, merges and rewards kept 64 — PostgreSQL refused the
    write (a 500: value too long), SQLite kept it. The columns hold 80, as the audit's does."""
    from omo.points import service as points

    name = "a" * 64
    users.create_user(uow, username=name, password=PASSWORD, role="admin", store_code=None)
    mid = people["member"]
    page = sign_in(client, name).get(f"/ui/members/{mid}").text
    adjust_id = re.search(r'name="adjust_id" value="([^"]+)"', page)
    assert adjust_id is not None
    give = {"csrf": _csrf(page), "adjust_id": adjust_id[1], "points": "+120", "reason": "補償"}
    r = client.post(f"/ui/members/{mid}/points", data=give, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    assert points.summary(uow, member_id=mid).available == 120
    with uow.read() as s:
        assert s.scalar(sa.text("SELECT actor FROM points_entries")) == f"ui:{name}"


def test_till_steps_refuse_bad_input_without_a_sale(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    page = sign_in(client, "tpe").get("/ui/pos")
    assert page.status_code == 200
    token = _csrf(page.text)
    base = {"csrf": token, "member_id": str(people["member"])}
    cases = [
        ({"action": "quote"}, "請至少加入一項商品"),
        ({"action": "quote", "sku0": "NOPE", "qty0": "x"}, "請輸入整數"),
        ({"action": "commit", "sku0": "S", "qty0": "1"}, "請先計算價格"),
        ({"action": "teleport"}, "未知的操作 teleport"),
    ]
    for extra, words in cases:
        r = client.post("/ui/pos", data={**base, **extra})
        assert r.status_code == 422 and words in r.text, (extra, r.text[:300])
    # the sale is what was priced: a basket edited after pricing, or a forged quote, is not sold
    from decimal import Decimal

    from omo.commerce import service as commerce
    from omo.commerce.schemas import ProductUpsert

    commerce.save_product(
        uow, sku="S", data=ProductUpsert(name="S", category="生活", price=Decimal(100))
    )
    priced = client.post("/ui/pos", data={**base, "action": "quote", "sku0": "S", "qty0": "1",
                                          "points": "0"})  # fmt: skip
    assert priced.status_code == 200 and 'id="pos-quote"' in priced.text, priced.text[:300]
    assert re.search(r'id="pos-points-cap">最多可折抵 [\d,]+ 點<', priced.text)  # the cap, told
    sale = {
        name: re.search(rf'name="{name}" value="([^"]*)"', priced.text)[1]  # type: ignore[index]
        for name in ("sale_id", "quote")
    }
    assert sale["quote"].startswith("Q1.")
    # a coupon the quote refuses is said in the page's language, with its values formatted
    with_code = {**base, "action": "quote", "sku0": "S", "qty0": "1", "coupon": "NOPE-CODE"}
    refused = client.post("/ui/pos", data=with_code).text.split('id="pos-quote"')[1]
    assert "查無此優惠券代碼" in refused and "no such coupon code" not in refused
    client.get("/ui/lang/en?next=/ui/pos")
    english = client.post("/ui/pos", data=with_code).text.split('id="pos-quote"')[1]
    assert "no such coupon code" in english
    client.get("/ui/lang/zh-TW?next=/ui/pos")
    sell = {**base, **sale, "action": "commit", "sku0": "S", "qty0": "1", "points": "0"}
    for extra, words in [({"qty0": "5"}, "計價後購物車已變更"),
                         ({"quote": ""}, "請先計算價格"),
                         ({"quote": sale["quote"][:-3] + "xyz"}, "這不是本系統產生的報價")]:  # fmt: skip
        r = client.post("/ui/pos", data={**sell, **extra})
        assert r.status_code == 422 and words in r.text, (extra, r.text[:300])
    assert client.post("/ui/pos", data={"action": "lookup", "q": "x"}).status_code == 403  # csrf
    # a staff member's own store is the only one: a forged store id is ignored for staff
    with uow.read() as s:
        from omo.commerce.models import Order

        assert s.query(Order).count() == 0


def test_till_steps_naming_an_id_past_the_database_s_integer_are_refused(
    client: TestClient, people: dict[str, int]
) -> None:
    """A member's or an order's id past 2**31 − 1 in the till's form reached the database: a
    500 (SQLite's OverflowError, PostgreSQL's integer out of range). Refused as the form's."""
    token = _csrf(sign_in(client, "tpe").get("/ui/pos").text)
    too_big = str(2**70)
    for extra in ({"action": "quote", "member_id": too_big, "sku0": "S", "qty0": "1"},
                  {"action": "redeem", "member_id": too_big, "reward": "TEA"},
                  {"action": "refund", "order_id": too_big, "ret1": "1"},
                  {"action": "quote", "member_id": str(people["member"]), "sku0": "S",
                   "qty0": str(2**31)}):  # fmt: skip
        r = client.post("/ui/pos", data={"csrf": token, **extra})
        assert r.status_code == 422 and "數字過大" in r.text, (extra, r.text[:300])


def test_the_till_sells_the_points_its_quote_took(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    """Asked for more points than the cap, the till's quote takes the cap, says so in the
    till's language and puts it in the points field: the sale pressed next is of what was
    shown, not refused for the points."""
    from decimal import Decimal

    from omo.commerce import service as commerce
    from omo.commerce.schemas import ProductUpsert
    from omo.points import service as points
    from omo.points.schemas import PointsChange

    commerce.save_product(
        uow, sku="S", data=ProductUpsert(name="S", category="生活", price=Decimal(100))
    )
    points.adjust(uow, member_id=people["member"], actor="t",
                  change=PointsChange(points=500, idempotency_key="p", reason="seed"))  # fmt: skip
    page = sign_in(client, "tpe").get("/ui/pos")
    basket = {"csrf": _csrf(page.text), "member_id": str(people["member"]), "sku0": "S",
              "qty0": "1"}  # fmt: skip
    priced = client.post("/ui/pos", data={**basket, "action": "quote", "points": "900"})
    assert priced.status_code == 200, priced.text[:300]
    form = {name: re.search(rf'name="{name}" value="([^"]*)"', priced.text)[1]  # type: ignore[index]
            for name in ("sale_id", "quote", "points")}  # fmt: skip
    assert form["points"] == "50"  # half of NT$100
    assert '<p class="muted pos-notice">點數已由 900 點調降為上限 50 點</p>' in priced.text
    done = client.post("/ui/pos", data={**basket, **form, "action": "commit"})
    assert done.status_code == 200 and 'id="pos-done"' in done.text, done.text[:500]
    assert points.summary(uow, member_id=people["member"]).available == 450


def test_the_till_says_what_the_sale_does_for_the_level(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    """升等差額提示 at the till: NT$4,000 for a new member leaves NT$6,000 to 銀卡; three of
    them bring the member to it."""
    from decimal import Decimal

    from omo.commerce import service as commerce
    from omo.commerce.schemas import ProductUpsert

    commerce.save_product(
        uow, sku="BAG", data=ProductUpsert(name="包", category="配件", price=Decimal(4000))
    )
    mid = f.enrol(uow, name="陳小華", phone="0933-444-555").member.id
    page = sign_in(client, "tpe").get("/ui/pos")
    basket = {"csrf": _csrf(page.text), "member_id": str(mid), "sku0": "BAG", "qty0": "1"}
    said = []
    for qty in ("1", "3"):
        priced = client.post("/ui/pos", data={**basket, "qty0": qty, "action": "quote"})
        assert priced.status_code == 200, priced.text[:300]
        said.append(priced.text.split('id="pos-tier-outlook"')[1].split("</p>")[0])
    assert "再消費 NT$6,000 即可升等銀卡" in said[0], said
    assert "此筆消費後即升等銀卡" in said[1], said


def test_the_till_says_the_points_and_coupons_that_end_soon(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    """Points given now expire in 12 months: the till says nothing of them today, and 340
    days on it says when the 500 expire (within 60 days). A coupon that ends within a week
    says its last day; one of 30 days does not."""
    from datetime import timedelta
    from decimal import Decimal

    from omo.coupons import service as coupons
    from omo.coupons.rules import CouponTemplate
    from omo.points import service as points
    from omo.points.schemas import PointsChange
    from omo.shared import clock

    mid = people["member"]
    points.adjust(uow, member_id=mid, actor="t",
                  change=PointsChange(points=500, idempotency_key="p", reason="seed"))  # fmt: skip
    held = {}
    for days in (3, 30):
        coupons.put_template(uow, code=f"D{days}", template=CouponTemplate(
            name=f"{days}天券", kind="amount_off", amount=Decimal(50), valid_days=days))  # fmt: skip
        held[days] = coupons.issue(uow, template_code=f"D{days}", member_ids=[mid],
                                   key=f"d{days}").issued[0].code  # fmt: skip
    page = sign_in(client, "tpe").get("/ui/pos")
    look = {"csrf": _csrf(page.text), "action": "lookup", "q": f"#{mid}"}
    today = client.post("/ui/pos", data=look).text
    assert 'id="pos-expiring"' not in today
    tags = {days: today.split(f"{code} (")[1].split(")</span>")[0] for days, code in held.items()}
    assert "coupon-ending" in tags[3] and "有效至" in tags[3] and "coupon-ending" not in tags[30]
    now = clock.now()
    clock.set_clock(lambda: now + timedelta(days=340))
    shown = client.post("/ui/pos", data=look).text
    said = shown.split('id="pos-expiring">')[1].split("</span>")[0]
    assert said.startswith("500 點將於 ") and said.endswith(" 到期"), said


def test_the_till_picks_the_coupons_that_take_most_and_sells_them(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    """自動選最優惠券: of a 折50 and a 9折 the member holds, the till picks both (9折 first, then
    折50: 1,000 less 100 less 50), fills the coupon field with them and says so; the sale pressed
    next uses both. Two codes typed into the field, separated by 、, are both tried, one of
    them typed with spaces as on a card."""
    from decimal import Decimal

    from omo.commerce import service as commerce
    from omo.commerce.schemas import ProductUpsert
    from omo.coupons import service as coupons
    from omo.coupons.rules import CouponTemplate

    commerce.save_product(
        uow, sku="S", data=ProductUpsert(name="S", category="生活", price=Decimal(1000))
    )
    codes = []
    for name, template in (
        ("OFF50", CouponTemplate(name="折50", kind="amount_off", amount=Decimal(50))),
        ("P10", CouponTemplate(name="9折", kind="percent_off", percent=Decimal(10))),
    ):
        coupons.put_template(uow, code=name, template=template)
        codes.append(coupons.issue(uow, template_code=name, member_ids=[people["member"]],
                                   key=f"k-{name}").issued[0].code)  # fmt: skip
    page = sign_in(client, "tpe").get("/ui/pos")
    basket = {"csrf": _csrf(page.text), "member_id": str(people["member"]), "sku0": "S",
              "qty0": "1"}  # fmt: skip
    picked = client.post("/ui/pos", data={**basket, "action": "best"})
    assert picked.status_code == 200, picked.text[:300]
    form = {name: re.search(rf'name="{name}" value="([^"]*)"', picked.text)[1]  # type: ignore[index]
            for name in ("sale_id", "quote", "points", "coupon")}  # fmt: skip
    assert form["coupon"] == f"{codes[1]}, {codes[0]}"
    assert f"已自動選用最優惠券：{codes[1]}, {codes[0]}" in picked.text
    assert '<th id="pos-total">NT$850</th>' in picked.text
    done = client.post("/ui/pos", data={**basket, **form, "action": "commit"})
    assert done.status_code == 200 and 'id="pos-done"' in done.text, done.text[:500]
    assert {coupons.get_coupon(uow, code=c).state for c in codes} == {"used"}
    spaced = codes[0].lower().replace("-", " ")  # one code typed with spaces stays one
    typed = client.post("/ui/pos", data={**basket, "action": "quote",
                                         "coupon": f"{spaced}、{codes[1]}"})  # fmt: skip
    assert typed.text.count("此優惠券已使用過") == 2


def test_a_coupon_tells_what_it_asks_on_the_card_and_at_the_till(
    api: TestClient, uow: UnitOfWork
) -> None:
    """滿1000, 任選3件 of 服飾, weekends 14:00–17:00, gold and above, not with the member's
    price: the API gives each term by name, the member card says them in the page's language
    (zh-TW by default, English when asked), and a plain coupon says nothing more."""
    from decimal import Decimal

    from omo.coupons import service as coupons
    from omo.coupons.rules import CouponTemplate

    member = f.enrol(uow, name="林小美", phone="0933-222-111").member.id
    coupons.put_template(uow, code="TERMS", template=CouponTemplate.model_validate({
        "name": "週末下午茶", "kind": "spend_get_off", "spend": "1000", "amount": "100",
        "min_items": 3, "categories": ["服飾"], "weekdays": [6, 7],
        "hours": ["14:00", "17:00"], "min_level": "gold", "with_level_price": False}))  # fmt: skip
    coupons.put_template(uow, code="PLAIN", template=CouponTemplate(
        name="折50", kind="amount_off", amount=Decimal(50)))  # fmt: skip
    coupons.put_template(uow, code="EVERY", template=CouponTemplate(
        name="每滿千折百", kind="spend_get_off", spend=Decimal(1000), amount=Decimal(100),
        repeat=True, max_discount=Decimal(300), stores=["TPE-101", "GONE-1"]))  # fmt: skip
    f.store(uow, "TPE-101")
    for code in ("TERMS", "PLAIN", "EVERY"):
        coupons.issue(uow, template_code=code, member_ids=[member], key=f"k-{code}")
    held = {c["template"]: c["terms"] for c in
            api.get(f"/api/v1/members/{member}/coupons").json()}  # fmt: skip
    assert held["TERMS"] | {"timezone": None} == {
        "min_spend": "1000.00", "every": None, "max_discount": None, "steps": None, "min_items": 3,
        "categories": ["服飾"],
        "excluded_categories": None, "channels": None, "stores": None, "weekdays": [6, 7],
        "hours": ["14:00:00", "17:00:00"], "timezone": None, "min_level": "gold",
        "first_order_only": False, "with_level_price": False}  # fmt: skip
    assert held["PLAIN"]["min_spend"] is None and held["PLAIN"]["with_level_price"]
    assert (held["EVERY"]["every"], held["EVERY"]["max_discount"]) == ("1000.00", "300.00")
    # the weekend's afternoon coupon is not open on a Monday, nor on a Saturday morning
    from datetime import UTC, datetime

    from omo.shared import clock

    opened = {}
    for moment in (
        datetime(2026, 12, 7, 7, tzinfo=UTC),
        datetime(2026, 12, 12, 2, tzinfo=UTC),
        datetime(2026, 12, 12, 7, tzinfo=UTC),
    ):  # Mon 15:00, Sat 10:00, Sat 15:00
        clock.set_clock(lambda moment=moment: moment)
        opened[moment.day, moment.hour] = {c["template"]: c["open_now"] for c in
                                           api.get(f"/api/v1/members/{member}/coupons").json()}  # fmt: skip
    assert [o["TERMS"] for o in opened.values()] == [False, False, True]
    assert all(o["PLAIN"] and o["EVERY"] for o in opened.values())
    clock.set_clock(lambda: datetime(2026, 12, 7, 7, tzinfo=UTC))
    assert held["EVERY"]["stores"] == ["TPE-101", "GONE-1"] and held["TERMS"]["stores"] is None
    link = api.get(f"/api/v1/members/{member}/card-link").json()["url"]
    public = TestClient(api.app)
    page = public.get(link.replace("http://127.0.0.1:8000", "")).text
    said = [part.split("</span>")[0] for part in page.split('class="muted coupon-terms">')[1:]]
    assert page.count("此時段不適用") == 1  # the weekend's, on a Monday
    assert sorted(said) == ["每滿 NT$1,000 · 最高折 NT$300 · 限 門市 TPE-101、GONE-1 使用",
                            "滿 NT$1,000 · 任選 3 件 · 限服飾 · 限週六、週日 · 14:00–17:00 · "
                            "gold 以上等級專屬 · 不得與會員價併用"]  # fmt: skip
    public.get("/ui/lang/en?next=/ui/login")
    english = public.get(link.replace("http://127.0.0.1:8000", "")).text
    assert "spend NT$1,000 or more · 3 items or more · only 服飾 · on Sat, Sun" in english
    assert "for every NT$1,000 spent · up to NT$300 off · only at 門市 TPE-101, GONE-1" in english
    from omo.web import pos

    assert pos.customer(uow, member_id=member).store_names == {"TPE-101": "門市 TPE-101"}


def test_a_member_claims_a_coupon_on_their_card(
    api: TestClient, uow: UnitOfWork, people: dict[str, int]
) -> None:
    """領券中心 on the card: the coupons the member may claim, each with its terms and a 領取
    button; a tap claims one and the card shows it held; a second tap of the same button
    claims nothing more; a coupon of one per member is then no longer offered; a refusal is
    said in the card's language; a forged link claims nothing."""
    from datetime import timedelta

    from omo.coupons import service as coupons
    from omo.coupons.rules import CouponTemplate
    from omo.shared import clock

    until = clock.now() + timedelta(days=3)
    coupons.put_template(uow, code="TAKE50", template=CouponTemplate(
        name="領券折50", kind="amount_off", amount=Decimal(50), min_spend=Decimal(500),
        claimable=True, claim_until=until))  # fmt: skip
    coupons.put_template(uow, code="NOTYOURS", template=CouponTemplate(
        name="金卡券", kind="amount_off", amount=Decimal(300), claimable=True,
        min_level="gold"))  # fmt: skip
    member = f.enrol(uow, name="林小美", phone="0933-222-333").member.id
    path = api.get(f"/api/v1/members/{member}/card-link").json()["url"].replace(
        "http://127.0.0.1:8000", "")  # fmt: skip
    public = TestClient(api.app)
    card = public.get(path).text
    offer = card.split('id="claim-TAKE50"')[1].split("</form>")[0]
    assert "領券折50" in offer and "滿 NT$500" in offer and "領取期限" in offer, offer
    assert 'id="claim-NOTYOURS"' not in card
    key = re.search(r'name="key" value="([^"]+)"', offer)
    assert key is not None
    tap = {"template": "TAKE50", "key": key[1]}
    done = public.post(f"{path}/claim", data=tap, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].endswith("?claimed=true")
    shown = public.get(done.headers["location"]).text
    assert 'id="card-claimed"' in shown and 'id="claim-TAKE50"' not in shown
    mangled = public.get(f"{path}?claimed=yes%E3%80%82")  # a link mangled: the card, no JSON
    assert mangled.status_code == 200 and 'id="card-claimed"' not in mangled.text
    assert "領券折50" in shown.split('class="card qr coupon"')[1].split("<svg")[0]
    again = public.post(f"{path}/claim", data=tap, follow_redirects=False)  # the same tap
    assert again.status_code == 303
    assert [c.template for c in coupons.member_coupons(uow, member_id=member)] == ["TAKE50"]
    refused = public.post(f"{path}/claim", data={"template": "NOTYOURS", "key": "x"})
    assert refused.status_code == 403
    assert "此優惠券限更高等級的會員領取" in refused.text.split('id="card-claim-refused"')[1]
    late = public.post(f"{path}/claim", data={"template": "TAKE50", "key": "y"})
    assert late.status_code == 409 and "您已領取此優惠券的上限張數" in late.text
    forged = public.post(path[:-4] + "AAAA/claim", data={"template": "TAKE50", "key": "z"})
    assert forged.status_code == 404
    assert public.post(f"{path}/claim", data={"template": "TAKE50"}).status_code == 422
    assert len(coupons.member_coupons(uow, member_id=member)) == 1
    # the settings page marks the templates members claim, with their time to claim
    listed = sign_in(TestClient(api.app), "boss").get("/ui/settings").text
    row = listed.split('id="coupon-templates"')[1].split("</table>")[0]
    assert row.count('class="tag coupon-claimable"') == 2 and "領券中心 · 領取期限" in row, row


def test_card_links_are_signed(api: TestClient, uow: UnitOfWork) -> None:
    member = f.enrol(uow, name="王大同", phone="0933-123-456").member.id
    link = api.get(f"/api/v1/members/{member}/card-link").json()["url"]
    public = TestClient(api.app)
    card = public.get(link.replace("http://127.0.0.1:8000", ""))
    assert card.status_code == 200 and "王大同" in card.text and "<svg" in card.text
    assert card.headers["cache-control"] == "no-store"
    assert 'id="card-rewards"' not in card.text and 'id="card-shipping"' not in card.text
    from omo.points import service as points
    from omo.points.schemas import PointsChange
    from omo.rewards import service as rewards
    from omo.rewards.schemas import RewardIn

    for code, price, level in (("MUG", 99_999, None), ("TOTE", 300, None), ("VIP", 1, "diamond")):
        cash = "49" if code == "TOTE" else None  # 點數加價購
        data = RewardIn.model_validate({"name": f"{code}-禮", "points": price,
                                        "min_level": level, "cash": cash})  # fmt: skip
        rewards.put_reward(uow, code=code, data=data, actor="t")
    points.adjust(uow, member_id=member, actor="t",
                  change=PointsChange(points=500, idempotency_key="c", reason="t"))  # fmt: skip
    f.post_order(
        uow, member_id=member, lines=[{"sku": "X", "quantity": 1, "unit_price": "40000"}]
    )  # gold: 2 shipments
    card = public.get(link.replace("http://127.0.0.1:8000", "")).text
    # what the next level still misses, said in money
    assert (
        "再消費 NT$40,000 即可升等鑽石" in card.split('id="card-tier-next"')[1].split("</div>")[0]
    )
    # a coupon reads by its name, valid through the last day it can be used
    from datetime import datetime
    from decimal import Decimal
    from zoneinfo import ZoneInfo

    from omo.coupons import service as coupons
    from omo.coupons.rules import CouponTemplate

    new_year = datetime(2099, 1, 1, tzinfo=ZoneInfo("Asia/Taipei"))
    coupons.put_template(uow, code="YEAR", template=CouponTemplate(
        name="年度禮 折100", kind="amount_off", amount=Decimal(100), valid_until=new_year))  # fmt: skip
    coupons.issue(uow, template_code="YEAR", member_ids=[member], key="k")
    coupons.put_template(uow, code="ONCE", template=CouponTemplate(
        name="一次券 折50", kind="amount_off", amount=Decimal(50), valid_days=30))  # fmt: skip
    (used,) = coupons.issue(uow, template_code="ONCE", member_ids=[member], key="k2").issued
    basket = {"channel": "web", "lines": [{"sku": "A", "quantity": 1, "unit_price": "400"}]}
    spent = api.post(f"/api/v1/coupons/{used.code}/redeem",
                     json={"member_id": member, "basket": basket, "idempotency_key": "u-1"})  # fmt: skip
    assert spent.status_code == 200, spent.text
    card = public.get(link.replace("http://127.0.0.1:8000", "")).text
    shown = card.split('class="card qr coupon"')[1].split("<svg")[0]
    assert "年度禮 折100" in shown and "有效至 2098年12月31日" in shown and "YEAR" not in shown
    assert "一次券" not in card and used.code not in card  # used: no longer shown as held
    # a coupon from a day to come: shown with its first day, without a code to scan yet
    coupons.put_template(uow, code="SOON", template=CouponTemplate(
        name="週年慶 折200", kind="amount_off", amount=Decimal(200),
        valid_from=datetime(2098, 6, 1, tzinfo=ZoneInfo("Asia/Taipei")), valid_until=new_year))  # fmt: skip
    (soon,) = coupons.issue(uow, template_code="SOON", member_ids=[member], key="k3").issued
    card = public.get(link.replace("http://127.0.0.1:8000", "")).text
    upcoming = card.split('id="card-upcoming-1"')[1].split("</div>")[0]
    assert "週年慶 折200" in upcoming and "2098年6月1日 起可用" in upcoming
    assert "有效至 2098年12月31日" in upcoming
    assert soon.code not in card
    assert card.count('class="card qr coupon"') == 1  # the usable one alone has a QR
    offered = card.split('id="card-rewards"')[1].split("</table>")[0]
    assert offered.index("TOTE-禮") < offered.index("MUG-禮")  # what the points reach, first
    assert '<tr class="muted"><td>MUG-禮' in offered
    assert "<td>TOTE-禮</td><td>300 點數 + NT$49</td>" in offered
    assert "VIP-禮" not in offered  # for diamond and above
    assert 'id="card-shipping">2<' in card
    # what changed the points: the gift given, the order's
    history = card.split('id="card-points-history"')[1].split("</table>")[0]
    assert "調整" in history and "+500" in history and "消費累積" in history
    assert "Yours to collect" not in card and "待領取" not in card
    # what they redeemed and have yet to collect: a gift, and a partner's voucher with its QR
    from omo.rewards.schemas import RewardRedeem

    rewards.put_reward(uow, code="CAFE", actor="t", data=RewardIn(
        name="全家咖啡", kind="partner", partner="FamilyMart", points=50))  # fmt: skip
    for code in ("TOTE", "CAFE"):
        rewards.redeem(uow, member_id=member, code=code, actor="app",
                       req=RewardRedeem(idempotency_key=f"app-{code}"))  # fmt: skip
    card = public.get(link.replace("http://127.0.0.1:8000", "")).text
    [voucher] = [r.voucher for r in rewards.redemptions_of(uow, member_id=member, limit=5)
                 if r.voucher]  # fmt: skip
    owed = card.split("qr voucher")[1]
    assert "全家咖啡" in owed and voucher in owed and "FamilyMart" in owed and "<svg" in owed
    assert card.count("TOTE-禮") == 2  # owed, and still on offer
    # bring a friend: the member's code, the link to the shop's sign-up and its QR, the terms,
    # and the friends it brought
    from omo.referrals import service as referrals

    code = referrals.code_for(uow, member_id=member, link="{code}").code
    friend = f.enrol(uow, phone="0933-123-457", referral_code=code).member.id
    card = public.get(link.replace("http://127.0.0.1:8000", "")).text
    shared = card.split('id="card-referral"')[1].split("</div>")[0]
    assert f"https://shop.example.com/join?ref={code}" in shared and "<svg" in shared
    assert "好友首次消費滿 NT$300" in shared and "50" in shared
    assert card.split('id="card-referred"')[1].count("<tr>") == 1 and "等待首次消費" in card
    f.post_order(uow, member_id=friend, lines=[{"sku": "X", "quantity": 1, "unit_price": "500"}])
    card = public.get(link.replace("http://127.0.0.1:8000", "")).text
    assert "已獲回饋" in card.split('id="card-referred"')[1]
    forged = link.rsplit("/", 1)[0] + "/OMO1.MQ.forged.sig"
    assert public.get(forged.replace("http://127.0.0.1:8000", "")).status_code == 404
    assert api.get("/api/v1/members/999999/card-link").status_code == 404


def test_marketing_and_review_pages(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    from omo.analytics.refresh import RefreshOptions, refresh
    from omo.journeys import playbook

    f.post_order(uow, member_id=people["member"])
    refresh(uow, RefreshOptions())
    playbook.seed(uow)
    page = sign_in(client, "mkt").get("/ui/segments")
    assert page.status_code == 200 and "rfm-grid" in page.text
    token = _csrf(page.text)
    good = client.post("/ui/segments/count", data={"rule": "orders >= 1", "csrf": token})
    assert 'id="count-members">1<' in good.text
    bad = client.post("/ui/segments/count", data={"rule": "shoe_size > 3", "csrf": token})
    assert "count-error" in bad.text and "shoe_size" in bad.text
    saved = client.post(
        "/ui/segments", data={"name": "buyers", "rule": "orders >= 1", "csrf": token},
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303
    csv = client.get("/ui/segments/buyers.csv")
    assert csv.status_code == 200 and csv.text.splitlines()[0].startswith("\ufeffmember_id,")
    assert len(csv.text.splitlines()) == 2
    journeys_page = client.get("/ui/journeys")
    assert "welcome" in journeys_page.text
    toggled = client.post(
        "/ui/journeys/welcome/toggle", data={"enabled": "true", "csrf": token},
        follow_redirects=False,
    )  # fmt: skip
    assert toggled.status_code == 303
    assert "啟用中" in client.get("/ui/journeys/welcome").text
    assert client.get("/ui/funnel").status_code == 200
    assert client.get("/ui/reviews").status_code == 403  # admins decide merges
    client.cookies.clear()
    sign_in(client, "ana")
    token = _csrf(client.get("/ui/journeys").text)
    r = client.post("/ui/journeys/welcome/toggle", data={"enabled": "false", "csrf": token})
    assert r.status_code == 403  # analysts read, they do not switch
    client.cookies.clear()
    assert sign_in(client, "boss").get("/ui/reviews").status_code == 200


def test_admin_merges_and_undoes_from_the_profile(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    twin = f.enrol(uow, name="陳美齡", phone="0987-654-321").member.id
    page = sign_in(client, "boss").get(f"/ui/members/{people['member']}")
    token = _csrf(page.text)
    r = client.post(
        f"/ui/members/{people['member']}/merge", data={"other": str(twin), "note": "同一人", "csrf": token},
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303
    merged = client.get(f"/ui/members/{people['member']}").text
    assert "+886987654321" in merged and f"#{twin} → #{people['member']}" in merged
    merge_id = re.search(r'action="/ui/merges/(\d+)/undo"', merged).group(1)  # type: ignore[union-attr]
    assert client.post(f"/ui/merges/{merge_id}/undo", data={"csrf": token}).status_code == 200
    assert "+886987654321" not in client.get(f"/ui/members/{people['member']}").text
    # a merge of a member with itself is refused with the reason
    same = client.post(
        f"/ui/members/{people['member']}/merge",
        data={"other": str(people["member"]), "csrf": token},
    )
    assert same.status_code == 422
    client.cookies.clear()
    sign_in(client, "mkt")
    token = _csrf(client.get("/ui/members").text)
    r = client.post(
        f"/ui/members/{people['member']}/merge", data={"other": str(twin), "csrf": token}
    )
    assert r.status_code == 403


def test_an_admin_marks_a_reward_sent_with_its_tracking_number(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    from omo.points import service as points
    from omo.points.schemas import PointsChange
    from omo.rewards import service as rewards
    from omo.rewards.schemas import RewardIn, RewardRedeem

    mid = people["member"]
    rewards.put_reward(uow, code="TOTE", data=RewardIn(name="帆布袋", points=10), actor="t")
    points.adjust(uow, member_id=mid, actor="t",
                  change=PointsChange(points=100, idempotency_key="s", reason="t"))  # fmt: skip
    for key, store in (("web-1", None), ("app-2", "TPE-101")):  # sent; collected at a store
        rewards.redeem(uow, member_id=mid, code="TOTE", actor="web",
                       req=RewardRedeem(idempotency_key=key, channel="web", store=store))  # fmt: skip
    page = sign_in(client, "boss").get("/ui/settings").text
    to_send = page.split('id="to-send"')[1].split("</table>")[0]
    assert 'value="web-1"' in to_send and "app-2" not in to_send
    form = {"csrf": _csrf(page), "redemption": "web-1", "reference": " 黑貓 9001-2233 "}
    assert client.post("/ui/rewards/sent", data={**form, "csrf": "x" * 43}).status_code == 403
    done = client.post("/ui/rewards/sent", data=form, follow_redirects=False)
    assert done.status_code == 303, done.text[:300]
    [sent] = [r for r in rewards.redemptions_of(uow, member_id=mid, limit=5) if r.store is None]
    assert (sent.reference, sent.fulfilled_at is not None) == ("黑貓 9001-2233", True)
    again = client.post("/ui/rewards/sent", data=form)
    assert again.status_code == 422 and "send:" in again.text and "web-1" in again.text
    nope = client.post("/ui/rewards/sent", data={**form, "redemption": "nope"})
    assert nope.status_code == 422
    client.cookies.clear()
    sign_in(client, "tpe")  # store staff do not run the settings
    staff = client.post(
        "/ui/rewards/sent", data={**form, "csrf": _csrf(client.get("/ui/pos").text)}
    )
    assert staff.status_code == 403


def test_the_settings_show_what_partners_are_owed(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    from omo.points import service as points
    from omo.points.schemas import PointsChange
    from omo.rewards import fulfilment
    from omo.rewards import service as rewards
    from omo.rewards.schemas import RedemptionFulfil, RewardIn, RewardRedeem

    empty = sign_in(client, "boss").get("/ui/settings").text
    assert "近 30 天沒有合作夥伴兌換" in empty.split('id="partners"')[1]
    mid = people["member"]
    rewards.put_reward(uow, code="CAFE", actor="t", data=RewardIn(
        name="全家咖啡", kind="partner", partner="FamilyMart", points=10))  # fmt: skip
    points.adjust(uow, member_id=mid, actor="t",
                  change=PointsChange(points=100, idempotency_key="s", reason="t"))  # fmt: skip
    for n in range(3):
        rewards.redeem(uow, member_id=mid, code="CAFE", actor="app",
                       req=RewardRedeem(idempotency_key=f"cafe-{n}"))  # fmt: skip
    [first, *_] = [r.voucher for r in rewards.redemptions_of(uow, member_id=mid, limit=5)]
    assert first is not None
    fulfilment.use_voucher(uow, voucher=first, req=RedemptionFulfil(), actor="FamilyMart")
    page = client.get("/ui/settings").text
    [row] = re.findall(r"<tr><td>FamilyMart</td>.*?</tr>", page.split('id="partners"')[1])
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert "全家咖啡" in cells[1] and cells[2:] == ["10", "3", "1", "0", "2"]


def test_the_settings_show_where_each_webhook_stands(
    client: TestClient, people: dict[str, int], uow: UnitOfWork, settings: Settings
) -> None:
    from omo.testing.postgres import free_port
    from omo.webhooks import delivery
    from omo.webhooks import service as webhooks
    from omo.webhooks.schemas import WebhookIn

    empty = sign_in(client, "boss").get("/ui/settings").text
    assert "尚無 Webhook 訂閱" in empty.split('id="webhooks"')[1]
    gone = f"http://127.0.0.1:{free_port()}/omo"
    webhooks.put_webhook(uow, name="erp", actor="t",
                         data=WebhookIn(url=gone, topics=["OrderRecorded", "TierChanged"]))  # fmt: skip
    webhooks.put_webhook(uow, name="dw", actor="t", data=WebhookIn(url=gone, active=False))
    f.post_order(uow)  # a guest's order: OrderRecorded all the same
    assert delivery.deliver_due(uow, settle_s=0).failed == 1  # nothing listens: it backs off
    table = client.get("/ui/settings").text.split('id="webhooks"')[1].split("</table>")[0]
    dw, erp = re.findall(r"<tr.*?</tr>", table, re.S)[1:]
    assert "dw" in dw and "（已停用）" in dw and "<td>全部</td>" in dw
    assert 'class="error"' in erp and "OrderRecorded、TierChanged" in erp
    assert "ConnectError" in erp and "連續失敗 1 次；下次重試" in erp
    assert re.findall(r"<td>(\d+)</td>", erp) == ["0", "1"]  # none posted, the sale waiting
    assert "未送出" not in table

    # 100 days on, the sale's fact is past the outbox's retention: both never had it
    from datetime import timedelta

    from omo.journeys import service as journeys
    from omo.shared import clock

    f.enrol(uow, phone="0912-555-001")  # the newest fact stays whatever its age
    later = clock.now() + timedelta(days=100)
    clock.set_clock(lambda: later)
    journeys.run_jobs(uow, settings=settings, adapters={}, deliver=False)
    table = client.get("/ui/settings").text.split('id="webhooks"')[1].split("</table>")[0]
    dw, erp = re.findall(r"<tr.*?</tr>", table, re.S)[1:]
    for row in (dw, erp):
        assert "1 則未送出：已超過事件保留期限而自 outbox 移除" in row
    kept = client.get("/ui/settings").text.split('id="outbox-kept">')[1].split("</p>")[0]
    assert "事件保留 90 天" in kept and "目前最舊的事件為" in kept
    assert re.search(r"上次移除 .*：\d+ 則，至位置 \d+。", kept), kept

    # failing since its first attempt 100 days ago, its tenth failure switches it off
    from sqlalchemy import update

    from omo.webhooks.models import Webhook

    uow.run(lambda s: s.execute(update(Webhook).where(Webhook.name == "erp").values(failures=9)))
    f.post_order(uow)
    report = delivery.deliver_due(uow, settle_s=0, switch_off_after=timedelta(hours=72))
    assert report.switched_off == ["erp"]
    table = client.get("/ui/settings").text.split('id="webhooks"')[1].split("</table>")[0]
    erp = re.findall(r"<tr.*?</tr>", table, re.S)[2]
    assert re.search(r"（已自動停用 .+：自 .+ 起持續失敗）", erp), erp
    assert "連續失敗 10 次" in erp and "下次重試" not in erp and "（已停用）" not in erp


def test_a_till_of_whole_dollars_refuses_cents_in_the_settings_form(
    settings: Settings, people: dict[str, int], uow: UnitOfWork
) -> None:
    """OMO_PRICE_UNIT=1: the settings form refuses a coupon of NT$50.5 off and a reward of
    NT$49.5 cash, saying why, and saves neither; whole amounts are saved."""
    from omo.app import create_app
    from omo.coupons import service as coupons

    app = create_app(settings.model_copy(update={"price_unit": Decimal(1)}))
    with TestClient(app) as whole:
        token = _csrf(sign_in(whole, "boss").get("/ui/settings").text)
        for kind, body in (
            ("coupon", {"name": "折50.5", "kind": "amount_off", "amount": "50.5"}),
            ("reward", {"name": "袋", "kind": "gift", "points": 300, "cash": "49.5"}),
        ):
            refused = whole.post(f"/ui/settings/{kind}",
                                 data={"body": json.dumps(body), "code": "HALF", "csrf": token})  # fmt: skip
            assert refused.status_code == 422, refused.text[:300]
            assert "is not a whole number of the price unit" in refused.text
        assert coupons.list_templates(uow) == []
        saved = whole.post("/ui/settings/coupon", follow_redirects=False, data={
            "body": json.dumps({"name": "折50", "kind": "amount_off", "amount": "50"}),
            "code": "WHOLE", "csrf": token})  # fmt: skip
        assert saved.status_code == 303
    app.state.engine.dispose()


def test_settings_are_edited_as_validated_json(
    client: TestClient, people: dict[str, int], uow: UnitOfWork
) -> None:
    from omo.tiers import service as tiers

    page = sign_in(client, "boss").get("/ui/settings")
    assert re.search(r'id="price-unit">折扣與部分退款以 NT\$0\.01 為單位計算', page.text)
    token = _csrf(page.text)
    broken = client.post("/ui/settings/tiers", data={"body": '{"levels": [', "csrf": token})
    assert broken.status_code == 422 and "JSON" in broken.text
    assert 'id="price-unit"' in broken.text  # the page again, with the error
    wrong = client.post(
        "/ui/settings/tiers", data={"body": '{"levels": [{"code": "x", "name": "X", "threshold": 9}]}',
                                    "csrf": token},
    )  # fmt: skip
    assert wrong.status_code == 422 and "tiers:" in wrong.text
    levels = [lvl.code for lvl in tiers.get_programme(uow).programme.levels]
    assert levels == ["member", "silver", "gold", "diamond"]  # refused edits changed nothing
    assert 'id="tier-excludes"' not in page.text and 'id="tier-per-unit"' not in page.text
    good = {"levels": [{"code": "member", "name": "一般會員"},
                       {"code": "vip", "name": "VIP", "threshold": "5000"}],
            "discount_excludes": ["禮券", "菸酒"], "discount_marked_down": False,
            "downgrade_steps": 1, "discount_channels": ["pos", "app"], "discount_per": "unit"}  # fmt: skip
    ok = client.post(
        "/ui/settings/tiers", data={"body": json.dumps(good), "csrf": token}, follow_redirects=False
    )
    assert ok.status_code == 303
    assert [lvl.code for lvl in tiers.get_programme(uow).programme.levels] == ["member", "vip"]
    shown = client.get("/ui/settings").text.split('id="tier-excludes"')[1].split("</p>")[0]
    assert "會員等級折扣不適用於：禮券、菸酒" in shown and "特價品不再享會員等級折扣" in shown
    assert "每次審核最多降 1 級" in client.get("/ui/settings").text.split('id="tier-steps"')[1]
    assert "會員等級價僅適用於：pos、app" in client.get("/ui/settings").text.split(
        'id="tier-channels"')[1].split("</p>")[0]  # fmt: skip
    assert "逐件四捨五入" in client.get("/ui/settings").text.split('id="tier-per-unit"')[1]
    assert 'id="points-excludes"' not in page.text
    ok = client.post("/ui/settings/points", data={
        "body": json.dumps({"redeem_excludes": ["禮券"]}), "csrf": token}, follow_redirects=False)  # fmt: skip
    assert ok.status_code == 303
    shown = client.get("/ui/settings").text.split('id="points-excludes"')[1].split("</p>")[0]
    assert "點數不可折抵：禮券" in shown
    coupon = {"name": "滿1000折150", "kind": "spend_get_off", "spend": "1000", "amount": "150"}
    made = client.post(
        "/ui/settings/coupon", data={"body": json.dumps(coupon), "code": "B150", "csrf": token},
        follow_redirects=False,
    )  # fmt: skip
    assert made.status_code == 303 and "B150" in client.get("/ui/settings").text
    bad = {**coupon, "amount": "2000"}  # more than the spend
    refused = client.post(
        "/ui/settings/coupon", data={"body": json.dumps(bad), "code": "B2000", "csrf": token}
    )
    assert refused.status_code == 422 and "B2000" not in client.get("/ui/settings").text
    reward = {"name": "帆布購物袋", "kind": "gift", "points": 300, "stock": 40}
    made = client.post(
        "/ui/settings/reward", data={"body": json.dumps(reward), "code": "TOTE", "csrf": token},
        follow_redirects=False,
    )  # fmt: skip
    assert made.status_code == 303
    table = client.get("/ui/settings").text.split('id="rewards"')[1]
    assert "帆布購物袋" in table and "300" in table
    for body, code in (({**reward, "points": 0}, "BAD"), (reward, " "), (reward, "BAD CODE")):
        refused = client.post(
            "/ui/settings/reward", data={"body": json.dumps(body), "code": code, "csrf": token}
        )
        assert refused.status_code == 422 and "reward:" in refused.text
    from omo.rewards import service as rewards

    assert [r.code for r in rewards.list_rewards(uow, available=False)] == ["TOTE"]


def test_dashboard_trend_counts_by_local_month(uow: UnitOfWork) -> None:
    from datetime import UTC, datetime

    from omo.shared import clock
    from omo.web import pages

    clock.set_clock(lambda: datetime(2026, 3, 10, 4, 0, tzinfo=UTC))
    member = f.enrol(uow, name="月底", phone="0955-000-111").member.id
    # 23:30 on 28 February in Taipei is 15:30 UTC: February's, not March's
    f.post_order(uow, member_id=member, ordered_at="2026-02-28T15:30:00+00:00")
    f.post_order(uow, member_id=member, ordered_at="2026-02-28T16:30:00+00:00")  # 1 March 00:30
    f.post_order(uow, member_id=member, ordered_at="2026-03-09T02:00:00+00:00")
    points = pages.trend(uow, zone="Asia/Taipei", months=3)
    assert [(p.month, p.orders, p.new_members, p.active_members) for p in points] == [
        ("2026-01", 0, 0, 0), ("2026-02", 1, 0, 1), ("2026-03", 2, 1, 1),
    ]  # fmt: skip
    assert str(points[-1].net_sales) == "600.00"


def test_every_ui_route_checks_sign_in_role_and_csrf(
    client: TestClient, people: dict[str, int]
) -> None:
    """Walk every /ui route: anonymous callers are sent to sign in, a POST without the CSRF token
    changes nothing, and no role meets a server error."""
    from fastapi.routing import APIRoute

    from omo.web import admin, insight, marketing, views

    open_routes = {"/ui/login", "/ui/lang/{code}", "/ui/logout"}
    params = {"member_id": str(people["member"]), "store_id": str(people["tpe"]), "key": "welcome",
              "name": "vip", "merge_id": "1", "review_id": "1", "task_id": "1", "kind": "tiers",
              "code": "en"}  # fmt: skip
    routes = [
        (method, r.path)
        for module in (views, marketing, insight, admin)
        for r in module.router.routes
        if isinstance(r, APIRoute)
        for method in r.methods
    ]
    assert len(routes) >= 25
    concrete = [(m, re.sub(r"\{(\w+)\}", lambda g: params[g.group(1)], p), p) for m, p in routes]
    for method, path, pattern in concrete:
        if pattern in open_routes:
            continue
        r = client.request(method, path, follow_redirects=False)
        if method == "POST" and r.status_code == 422:
            continue  # the form's fields are checked first: nothing was done either way
        assert r.status_code == 303 and "/ui/login" in r.headers["location"], (method, path)
    for username in ("boss", "mkt", "ana", "tpe"):
        client.cookies.clear()
        sign_in(client, username)
        for method, path, pattern in concrete:
            r = client.request(method, path, follow_redirects=False)
            assert r.status_code < 500, (username, method, path, r.text[:300])
            if method == "POST" and pattern not in open_routes:
                assert r.status_code in (403, 422), (username, method, path)


def test_the_store_page_shows_the_day_and_checks_the_tills_receipts(
    client: TestClient, uow: UnitOfWork, people: dict[str, int]
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from omo.shared import clock

    noon = datetime(2026, 12, 6, 12, 0, tzinfo=ZoneInfo("Asia/Taipei"))
    clock.set_clock(lambda: noon)
    for receipt, store, price in (("POS-1", "TPE-101", "1030"), ("POS-2", "TPE-101", "500"),
                                  ("POS-3", "KHH-201", "700")):  # fmt: skip
        f.post_order(uow, channel="pos", external_id=receipt, store=store,
                     ordered_at=noon.isoformat(),
                     lines=[{"sku": "X", "quantity": 1, "unit_price": price}])  # fmt: skip
    sign_in(client, "tpe")
    client.headers["Accept-Language"] = "zh-TW"
    page = client.get(f"/ui/stores/{people['tpe']}")  # today, in the brand's zone
    assert page.status_code == 200, page.text
    assert "日結" in page.text and 'value="2026-12-06"' in page.text
    assert "NT$1,530" in page.text.split('id="day-total">')[1][:20]  # not KHH's 700
    assert 'id="day-open"' in page.text  # noon: the day goes on
    assert 'id="receipt-gaps"' not in page.text  # POS-1 and POS-2: no hole
    before = dump(uow.engine)
    url = f"/ui/stores/{people['tpe']}/reconcile"
    journal = "單號,金額\nPOS-1,1,030\nPOS-9\tNT$450\n"
    r = client.post(url, data={"csrf": _csrf(page.text), "day": "2026-12-06", "journal": journal})
    assert r.status_code == 200, r.text
    assert "POS-9" in r.text.split('id="missing"')[1].split("</p>")[0]
    assert "POS-2" in r.text.split('id="unlisted"')[1].split("</p>")[0]
    assert "2 張單據中有 1 張相符" in r.text
    bad = client.post(url, data={"csrf": _csrf(page.text), "day": "2026-12-06",
                                 "journal": "POS-1,1030\nPOS-1,1030"})  # fmt: skip
    assert bad.status_code == 422
    error = bad.text.split('id="day-error">')[1].split("</p>")[0]
    assert "line 2" in error and "POS-1" in error
    assert "POS-1,1030\nPOS-1,1030</textarea>" in bad.text  # kept to mend
    good = "POS-1 1030\nPOS-2 500"
    ok = client.post(url, data={"csrf": _csrf(page.text), "day": "2026-12-06", "journal": good})
    assert 'id="reconciled"' in ok.text and "NT$1,530" in ok.text
    slip = client.post(url, data={"csrf": _csrf(page.text), "day": "2026-12-06",
                                  "journal": good + "\nR-9 -100"})  # fmt: skip
    assert "退貨單：1 張中有 0 張與本店退款相符（NT$100）" in slip.text
    assert "R-9" in slip.text.split('id="returns-missing">')[1].split("</p>")[0]
    assert dump(uow.engine) == before
    f.post_order(uow, channel="pos", external_id="POS-4", store="TPE-101",
                 ordered_at=noon.isoformat(),
                 lines=[{"sku": "X", "quantity": 1, "unit_price": "90"}])  # fmt: skip
    gaps = client.get(f"/ui/stores/{people['tpe']}").text.split('id="receipt-gaps">')[1]
    assert gaps.split("</p>")[0].endswith("POS-3")  # between POS-1 and POS-4
    for day in ("2026-13-01", "2026-12-07", "x" * 10):
        shown = client.get(f"/ui/stores/{people['tpe']}?day={day}")
        assert shown.status_code == 422 and 'id="day-error"' in shown.text, day
    stale = client.post(url, data={"csrf": "nope", "journal": good})
    assert stale.status_code == 403
    client.cookies.clear()
    sign_in(client, "boss")
    nowhere = client.get("/ui/stores/999")  # no such store: the UI's page, not the API's JSON
    assert nowhere.status_code == 404 and "text/html" in nowhere.headers["content-type"]
    client.cookies.clear()
    sign_in(client, "tpe")
    page = client.get(f"/ui/stores/{people['tpe']}")
    other = client.post(f"/ui/stores/{people['khh']}/reconcile",
                        data={"csrf": _csrf(page.text), "journal": good})  # fmt: skip
    assert other.status_code == 403 and "another store" in other.text

    # 日結確認: not while the day goes on; the next morning, once; a late sale shown apart
    close = f"/ui/stores/{people['tpe']}/close"
    assert 'id="close-day"' not in page.text  # noon on the 6th
    early = client.post(close, data={"csrf": _csrf(page.text), "day": "2026-12-06"})
    assert early.status_code == 422
    assert "2026-12-06 要到" in early.text and "才結束：當日結束後才能日結" in early.text
    assert "NT$1,620" in early.text.split('id="day-total">')[1][:20]  # the figures stay up
    morning = datetime(2026, 12, 7, 9, 0, tzinfo=ZoneInfo("Asia/Taipei"))
    clock.set_clock(lambda: morning)
    sixth = client.get(f"/ui/stores/{people['tpe']}?day=2026-12-06").text
    assert 'id="close-day"' in sixth and "確認日結" in sixth
    done = client.post(close, data={"csrf": _csrf(sixth), "day": "2026-12-06"})
    assert done.status_code == 200, done.text
    closing = done.text.split('id="day-closing">')[1].split("</div>")[0]
    assert "由 ui:tpe 完成日結：銷售 3 筆，NT$1,620" in closing and "since-closing" not in closing
    assert 'id="close-day"' not in done.text
    sent = datetime(2026, 12, 7, 9, 30, tzinfo=ZoneInfo("Asia/Taipei"))
    clock.set_clock(lambda: sent)
    f.post_order(uow, channel="pos", external_id="POS-5", store="TPE-101",
                 ordered_at=noon.isoformat(),
                 lines=[{"sku": "X", "quantity": 1, "unit_price": "200"}])  # fmt: skip
    later = client.get(f"/ui/stores/{people['tpe']}?day=2026-12-06").text
    since = later.split('id="since-closing">')[1].split("</p>")[0]
    assert "日結後變動：銷售 1 筆，NT$200" in since and "POS-5" in since
    assert client.post(close, data={"csrf": "nope", "day": "2026-12-06"}).status_code == 403

    # 取消日結: not for the till's staff; a store manager reopens with a reason, then closes again
    assert 'id="reopen-day"' not in later
    reopen = f"/ui/stores/{people['tpe']}/reopen"
    denied = client.post(reopen, data={"csrf": _csrf(later), "day": "2026-12-06", "reason": "x"})
    assert denied.status_code == 403
    users.create_user(uow, username="mgr", password=PASSWORD, role="manager",
                      store_code="TPE-101")  # fmt: skip
    client.cookies.clear()
    sign_in(client, "mgr")
    page = client.get(f"/ui/stores/{people['tpe']}?day=2026-12-06").text
    assert 'id="reopen-day"' in page and "取消日結" in page
    blank = client.post(reopen, data={"csrf": _csrf(page), "day": "2026-12-06", "reason": "  "})
    assert blank.status_code == 422 and 'id="day-closing"' in blank.text  # still closed
    assert "請說明取消日結的原因" in blank.text
    done = client.post(reopen, data={"csrf": _csrf(page), "day": "2026-12-06",
                                     "reason": "POS-5 sent late"})  # fmt: skip
    assert done.status_code == 200, done.text
    said = done.text.split('id="day-reopened">')[1].split("</p>")[0]
    assert "由 ui:mgr 取消日結：POS-5 sent late" in said
    assert 'id="close-day"' in done.text and 'id="day-closing"' not in done.text
    twice = client.post(reopen, data={"csrf": _csrf(page), "day": "2026-12-06", "reason": "y"})
    assert twice.status_code == 422 and "TPE-101 的 2026-12-06 尚未日結" in twice.text
    closed = client.post(close, data={"csrf": _csrf(page), "day": "2026-12-06"})
    assert "銷售 4 筆，NT$1,820" in closed.text.split('id="day-closing">')[1].split("</div>")[0]
    assert 'id="day-reopened"' not in closed.text


def test_the_dashboard_lists_every_store_yesterday_and_the_points_this_month(
    client: TestClient, uow: UnitOfWork, people: dict[str, int]
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from omo.points import service as points
    from omo.points.schemas import PointsChange
    from omo.shared import clock

    tpe = ZoneInfo("Asia/Taipei")
    moment = [datetime(2026, 12, 6, 20, 0, tzinfo=tpe)]
    clock.set_clock(lambda: moment[0])
    f.post_order(uow, channel="pos", external_id="POS-1", store="TPE-101",
                 ordered_at=moment[0].isoformat(), member_id=people["member"],
                 lines=[{"sku": "X", "quantity": 1, "unit_price": "1000"}])  # fmt: skip
    f.post_order(uow, channel="pos", external_id="POS-2", store="TPE-101",
                 ordered_at=moment[0].isoformat(),
                 lines=[{"sku": "X", "quantity": 1, "unit_price": "3000"}])  # fmt: skip
    points.adjust(uow, member_id=people["member"], actor="t",
                  change=PointsChange(points=70, idempotency_key="gift", reason="t"))  # fmt: skip
    moment[0] = datetime(2026, 12, 7, 9, 0, tzinfo=tpe)
    sign_in(client, "boss")
    client.headers["Accept-Language"] = "zh-TW"
    page = client.get("/ui/")
    assert page.status_code == 200, page.text
    table = page.text.split('id="stores-day"')[1].split("</table>")[0]
    rows = table.split("<tr")[2:]  # past the header
    tpe_row = next(r for r in rows if "門市 TPE-101" in r)
    assert f"/ui/stores/{people['tpe']}?day=2026-12-06" in tpe_row
    assert "NT$4,000" in tpe_row and "25" in tpe_row  # members paid 1,000 of 4,000
    assert "晚上8:00" in tpe_row  # its last sale, at the store's hour
    khh_row = next(r for r in rows if "門市 KHH-201" in r)
    assert 'class="error"' in khh_row and 'class="error"' not in tpe_row  # nothing from KHH
    assert "昨日各門市" in page.text
    month = page.text.split('data-kpi="points-month">')[1].split("</div>")[0]
    assert month.startswith("本月: +80 / −0")  # 70 given and 10 earned by the NT$1,000 sale


def test_the_points_ledger_page_and_its_csv(
    client: TestClient, uow: UnitOfWork, people: dict[str, int]
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from omo.points import service as points
    from omo.points.schemas import PointsChange
    from omo.shared import clock

    tpe = ZoneInfo("Asia/Taipei")
    moment = [datetime(2026, 11, 30, 23, 30, tzinfo=tpe)]
    clock.set_clock(lambda: moment[0])
    points.adjust(uow, member_id=people["member"], actor="t",
                  change=PointsChange(points=500, idempotency_key="in", reason="t"))  # fmt: skip
    moment[0] = datetime(2026, 12, 3, 10, 0, tzinfo=tpe)
    points.redeem(uow, member_id=people["member"], actor="t",
                  change=PointsChange(points=120, idempotency_key="out"))  # fmt: skip
    sign_in(client, "ana")  # analysts see figures, not people
    client.headers["Accept-Language"] = "zh-TW"
    page = client.get("/ui/points")
    assert page.status_code == 200, page.text
    table = page.text.split('id="points-ledger"')[1].split("</table>")[0]
    rows = table.split("<tr")[2:]
    assert len(rows) == 12 + 1  # Jan–Dec 2026 and the total
    assert "2026-11-01" in rows[10] and "500" in rows[10]
    assert "2026-12-01" in rows[11] and "120" in rows[11] and "380" in rows[11]
    csv_link = page.text.split('id="points-csv"')[0].rsplit('href="', 1)[1].split('"')[0]
    got = client.get(csv_link.replace("&amp;", "&"))
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert "attachment" in got.headers["content-disposition"]
    lines = got.text.split("\r\n")
    assert lines[0] == ("start,end,opening,earned,bonus,adjusted_in,given_back,adjusted_out,"
                        "redeemed,taken_back,expired,closing")  # fmt: skip
    assert lines[11] == "2026-11-01,2026-12-01,0,0,0,500,0,0,0,0,0,500"
    assert lines[12] == "2026-12-01,2026-12-04,500,0,0,0,0,0,120,0,0,380"
    assert lines[13].startswith("2026-01-01,2026-12-04,0,") and lines[13].endswith(",380")
    assert "closing_liability,380.00" in got.text  # NT$1 a point
    assert 'id="points-clearing"' not in page.text  # no store issued or took points
    f.post_order(uow, channel="pos", external_id="POS-P", store="TPE-101",
                 ordered_at=moment[0].isoformat(), member_id=people["member"],
                 lines=[{"sku": "X", "quantity": 1, "unit_price": "1000"}])  # fmt: skip
    cleared = client.get("/ui/points").text.split('id="points-clearing"')[1].split("</table>")[0]
    row = next(r for r in cleared.split("<tr")[2:] if "TPE-101" in r)
    assert "<td>10</td>" in row and "<td>-10</td>" in row  # NT$1,000 earned 10 there
    cleared_page = client.get("/ui/points").text
    link = cleared_page.split('id="clearing-csv"')[0].rsplit('href="', 1)[1].split('"')[0]
    sheet = client.get(link.replace("&amp;", "&"))
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    assert sheet.text.split("\r\n")[:2] == [
        "store,earned,taken_back,redeemed,given_back,net,value", "TPE-101,10,0,0,0,-10,-10.00",
    ]  # fmt: skip
    assert "ALL,10,0,0,0,-10,-10.00\r\npoint_value,1.00" in sheet.text
    days = client.get("/ui/points?start=2026-11-30&end=2026-12-02&by=day")
    assert days.status_code == 200 and days.text.count("<tr") == 1 + 2 + 1
    for bad in ("?start=2026-12-04&end=2026-12-01", "?by=week", "?start=12/01/2026"):
        r = client.get("/ui/points" + bad)
        assert r.status_code == 422 and 'id="points-error"' in r.text, bad
        assert client.get("/ui/points.csv" + bad).status_code == 422
        if "by=" not in bad:
            assert client.get("/ui/points-clearing.csv" + bad).status_code == 422
            assert client.get("/ui/refunds-clearing.csv" + bad).status_code == 422
    client.cookies.clear()
    sign_in(client, "tpe")  # store staff: no dashboard, no ledger
    assert client.get("/ui/points").status_code == 403
    assert client.get("/ui/points.csv").status_code == 403
    assert client.get("/ui/points-clearing.csv").status_code == 403
    assert client.get("/ui/refunds-clearing.csv").status_code == 403
