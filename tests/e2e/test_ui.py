"""The admin UI in a real browser: sign in, find a member, open the profile, see the dashboard
move after a sale, switch language; store staff kept to their store and out of settings.
With OMO_SCREENSHOTS=DIR set, each main page is saved there (docs/screenshots/)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from omo.analytics.refresh import RefreshOptions, refresh
from omo.commerce import service as commerce
from omo.commerce.models import Order
from omo.commerce.schemas import ProductUpsert
from omo.db import UnitOfWork
from omo.journeys import playbook
from omo.users import service as users
from omo.web import card
from tests import factories as f
from tests.e2e.conftest import E2E_SECRET

PASSWORD = "correct horse battery"
SHOTS = os.environ.get("OMO_SCREENSHOTS")


def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def sign_in(page: Any, url: str, username: str) -> None:
    page.goto(f"{url}/ui/")
    assert "/ui/login" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#whoami")


def test_marketer_finds_a_member_and_sees_the_dashboard_move(browser: Any, live: Any) -> None:
    server, uow = live
    _world(uow)
    refresh(uow, RefreshOptions())  # segments for the dashboard's chart
    context = browser.new_context(locale="zh-TW", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{server.url}/ui/login")
    shot(page, "login")
    sign_in(page, server.url, "mkt")
    assert page.inner_text("h1") == "儀表板"
    members_before = page.inner_text("[data-kpi=members]")
    orders_before = page.inner_text("[data-kpi=orders]")
    assert page.locator("canvas#segments").count() == 1
    page.wait_for_function("() => window.Chart !== undefined")  # the vendored script loaded
    shot(page, "dashboard")

    page.click("text=會員")
    page.fill("input[name=q]", "0912 345 678")
    page.click("button:has-text('搜尋')")
    page.click("#results a >> nth=1")
    page.wait_for_selector("#member-name")
    assert "陳美玲" in page.inner_text("#member-name")
    assert "+886912345678" in page.inner_text("#identities")
    assert page.inner_text("#tier") == "一般會員"
    assert "/ui/members/" in page.url and "0912" not in page.url  # no phone in the URL
    shot(page, "member")

    # a sale and a new member elsewhere (a till, the web shop): the dashboard follows
    f.enrol(uow, name="林志明", phone="0922-000-111")
    just_now = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    f.post_order(uow, customer=[{"kind": "phone", "value": "0922-000-111"}], ordered_at=just_now)
    page.goto(f"{server.url}/ui/")
    assert int(page.inner_text("[data-kpi=members]").replace(",", "")) == (
        int(members_before.replace(",", "")) + 1
    )
    assert int(page.inner_text("[data-kpi=orders]").replace(",", "")) == (
        int(orders_before.replace(",", "")) + 1
    )

    page.click("a[hreflang=en]")
    assert page.inner_text("h1") == "Dashboard"
    assert "NT$" in page.inner_text("#kpis")
    context.close()


def test_store_staff_stay_in_their_store(browser: Any, live: Any) -> None:
    server, uow = live
    stores = _world(uow)
    context = browser.new_context(locale="zh-TW")
    page = context.new_page()
    sign_in(page, server.url, "tpe")
    assert "/ui/members" in page.url  # staff start at member look-up, no dashboard
    page.goto(f"{server.url}/ui/stores/{stores['TPE-101']}")
    assert page.inner_text("h1").startswith("門市")
    shot(page, "store")
    for path in (f"/ui/stores/{stores['KHH-201']}", "/ui/settings", "/ui/"):
        page.goto(f"{server.url}{path}")
        if path == "/ui/":
            assert "/ui/members" in page.url
        else:
            assert page.inner_text("h1") == "沒有權限", path
    context.close()


def test_admin_settings_page(browser: Any, live: Any) -> None:
    server, uow = live
    _world(uow)
    page = browser.new_page()
    sign_in(page, server.url, "boss")
    page.click("a[href='/ui/settings']")
    assert "銀卡" in page.inner_text("#tier-levels")
    page.click("details:has(#edit-reward) > summary")  # the reward editor, with an example
    page.fill("#edit-reward input[name=code]", "TOTE")
    page.click("#edit-reward button[type=submit]")
    assert "帆布購物袋" in page.inner_text("#rewards")
    shot(page, "settings")
    page.close()


def _world(uow: UnitOfWork) -> dict[str, int]:
    stores = {code: f.store(uow, code) for code in ("TPE-101", "KHH-201")}
    for name, role, store in [
        ("boss", "admin", None), ("mkt", "marketer", None), ("tpe", "staff", "TPE-101"),
    ]:  # fmt: skip
        users.create_user(uow, username=name, password=PASSWORD, role=role, store_code=store)
    member = f.enrol(uow, name="陳美玲", phone="0912-345-678").member.id
    f.post_order(uow, member_id=member)
    return stores


def test_coupon_issued_in_the_profile_is_redeemed_at_the_till(browser: Any, live: Any) -> None:
    """Marketer issues a coupon on the profile; store staff find the member by the card QR's
    reference, price a basket with it, commit; the dashboard's redemption rate moves."""
    server, uow = live
    _world(uow)
    playbook.seed(uow)  # FIRST100 among the coupon templates: 滿500折100
    commerce.save_product(
        uow, sku="MUG-1", data=ProductUpsert(name="保溫杯", category="生活", price=Decimal(650))
    )
    marketer = browser.new_context(locale="zh-TW").new_page()
    sign_in(marketer, server.url, "mkt")
    before = marketer.inner_text("[data-kpi=coupons]")
    marketer.goto(f"{server.url}/ui/members/1")
    marketer.select_option("#issue-coupon select", "FIRST100")
    marketer.click("#issue-coupon button")
    code = marketer.inner_text("#coupons tr:nth-child(2) td:nth-child(1)")
    assert len(code) >= 10

    # the member opens their card from a link (phone-sized), the till scans its code
    token = card.card_token(E2E_SECRET, 1)
    phone = browser.new_context(locale="zh-TW", viewport={"width": 390, "height": 844}).new_page()
    phone.goto(f"{server.url}/card/{token}")
    assert phone.inner_text("#card-name") == "陳美玲"
    assert phone.locator("#member-qr svg").count() == 1 and code in phone.inner_text("main")
    assert "首購禮 滿500折100" in phone.inner_text(
        "main"
    )  # the coupon's name, not its template code
    # bring a friend: the referral link, shown and as a QR the width of a phone allows
    referral = phone.locator("#card-referral")
    assert "/join?ref=R" in referral.inner_text() and referral.locator("svg").count() == 1
    assert referral.bounding_box()["width"] <= 390
    shot(phone, "member-card")
    phone.goto(f"{server.url}/card/{token[:-3]}xyz")
    assert "無效" in phone.inner_text("h1")

    till = browser.new_context(locale="zh-TW", viewport={"width": 1024, "height": 768}).new_page()
    sign_in(till, server.url, "tpe")
    till.click("a[href='/ui/pos']")
    till.fill("input[name=q]", token)
    till.click("form.card button")
    assert till.inner_text("#pos-tier") == "一般會員"
    # theirs, by name, with what it asks
    assert f"{code} (首購禮 滿500折100: 滿 NT$500)" in till.inner_text("#pos-member")
    till.fill("input[name=sku0]", "MUG-1")
    till.fill("input[name=qty0]", "1")
    till.fill("input[name=coupon]", code)
    till.click("#pos-quote-button")
    assert till.inner_text("#pos-total") == "NT$550"  # 650 − 100
    shot(till, "pos")
    till.click("#pos-commit")
    assert till.inner_text("#pos-done") == "交易完成"
    till.go_back()  # a double submit of the same sale records nothing more
    till.click("#pos-commit")
    with uow.read() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 2

    marketer.goto(f"{server.url}/ui/")
    assert marketer.inner_text("[data-kpi=coupons]") != before
    assert marketer.inner_text("[data-kpi=coupons]") == "100.0%"

    # the used coupon scanned again: the till says why in the staff's language
    till.click("#pos-done ~ p a")  # the next customer: the same member's card again
    till.fill("input[name=q]", token)
    till.click("form.card button")
    assert code not in till.inner_text("#pos-member")  # used: no longer listed as theirs
    till.fill("input[name=sku0]", "MUG-1")
    till.fill("input[name=qty0]", "1")
    till.fill("input[name=coupon]", code)
    till.click("#pos-quote-button")
    assert "此優惠券已使用過" in till.inner_text("#pos-quote")
    assert till.inner_text("#pos-total") == "NT$650"
    shot(till, "pos-refused")

    # the mug comes back: the till finds the sale by its receipt and gives it back
    with uow.read() as session:
        receipt = session.scalar(select(Order.external_id).where(Order.channel == "pos"))
    till.click("#pos-return summary")
    till.fill("input[name=receipt]", str(receipt))
    till.click("#pos-return-find button")
    till.fill("input[name=ret1]", "1")
    till.click("#pos-weigh")  # what it gives back, before anything is given
    assert "NT$550" in till.inner_text("#pos-weighed")
    assert till.input_value("input[name=ret1]") == "1"
    shot(till, "pos-return")
    till.click("#pos-give-back-button")
    assert "NT$550" in till.inner_text("#pos-refunded")
    assert till.locator("#pos-nothing-left").count() == 1

    # closing: the store's day shows the sale and its return, and the till's receipts check out
    with uow.read() as session:
        store_id, at = session.execute(
            select(Order.store_id, Order.ordered_at).where(Order.channel == "pos")
        ).one()
    day = at.astimezone(ZoneInfo("Asia/Taipei")).date().isoformat()
    till.goto(f"{server.url}/ui/stores/{store_id}?day={day}")
    assert till.inner_text("#day-total") == "NT$550"
    assert till.inner_text("#day-net") == "NT$0"
    till.fill("textarea[name=journal]", f"{receipt} 550\nPOS-LOST 120")
    till.click("form[action$='/reconcile'] button")
    assert till.inner_text("#missing").endswith("POS-LOST")
    shot(till, "store-day")
    till.fill("textarea[name=journal]", f"{receipt} 550")
    till.click("form[action$='/reconcile'] button")
    assert "1 張" in till.inner_text("#reconciled")


def test_segment_builder_counts_live_and_pages_render(browser: Any, live: Any) -> None:
    server, uow = live
    _world(uow)
    refresh(uow, RefreshOptions())
    playbook.seed(uow)
    page = browser.new_context(locale="zh-TW", viewport={"width": 1280, "height": 900}).new_page()
    sign_in(page, server.url, "boss")
    page.click("a[href='/ui/segments']")
    page.fill("#builder input[name=rule]", "orders >= 1")
    page.wait_for_selector("#count-members")  # HTMX asked the server as the rule was typed
    assert page.inner_text("#count-members") == "1"
    page.fill("#builder input[name=rule]", "orders >= ")
    page.wait_for_selector("#count-error")
    page.fill("#builder input[name=rule]", "spend > 100")
    page.wait_for_selector("#count-members")
    shot(page, "segments")
    for path, name in (("/ui/funnel", "funnel"), ("/ui/journeys", "journeys"),
                       ("/ui/journeys/welcome", "journey"), ("/ui/reviews", "reviews")):  # fmt: skip
        page.goto(f"{server.url}{path}")
        assert page.locator("h1").count() == 1, path
        shot(page, name)


def _y4m(text: str, path: Path) -> Path:
    """A still video of the QR code of `text`, for Chromium's fake camera (Y4M, 4:2:0)."""
    import segno

    rows = list(segno.make(text, error="m").matrix_iter(scale=6, border=4))
    size = len(rows) + (len(rows) % 2)
    luma = bytearray(b"\xff" * size * size)
    for y, row in enumerate(rows):
        for x, dark in enumerate(row):
            if dark:
                luma[y * size + x] = 0
    chroma = b"\x80" * ((size // 2) * (size // 2))
    frame = b"FRAME\n" + bytes(luma) + chroma + chroma
    header = f"YUV4MPEG2 W{size} H{size} F10:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + frame * 10)
    return path


def test_till_reads_the_member_card_with_the_camera(
    chromium: tuple[Any, str], live: Any, tmp_path: Path
) -> None:
    """Chromium's fake camera shows the card's QR code; the page's scanner (jsQR) reads it and
    looks the member up."""
    from tests.e2e.conftest import CHROMIUM_ARGS

    p, path = chromium
    server, uow = live
    _world(uow)
    video = _y4m(card.card_token(E2E_SECRET, 1), tmp_path / "card.y4m")
    camera = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-video-capture={video}"]  # fmt: skip
    browser = p.chromium.launch(executable_path=path, args=[*CHROMIUM_ARGS, *camera])
    try:
        context = browser.new_context(locale="zh-TW", permissions=["camera"])
        page = context.new_page()
        sign_in(page, server.url, "tpe")
        page.goto(f"{server.url}/ui/pos")
        page.click("#scan-button")
        page.wait_for_selector("#pos-member", timeout=15_000)
        assert "陳美玲" in page.inner_text("#pos-member")
    finally:
        browser.close()
