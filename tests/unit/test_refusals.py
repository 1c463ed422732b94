"""A till says its refusals in the page's language (web/refusals.py).

The modules a till reaches are read as source: every refusal of fixed words must be in each
language's catalog, and every refusal made of values must carry them (ctx) under names for which
web/refusals.py has a sentence — itself in each catalog. A refusal added later without either
fails here, not in a Chinese store."""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

import omo
from omo.coupons import rules
from omo.coupons.service import CouponRefused
from omo.points.ledger import InsufficientPoints
from omo.shared.errors import Conflict, NotFound, ValidationFailed
from omo.web import refusals
from omo.web.i18n import Formats

SRC = Path(omo.__file__).parent
TILL = [  # what the till (and the API a till calls) can refuse
    "web/pos.py", "web/pos_returns.py", "coupons/rules.py", "coupons/service.py",
    "checkout/service.py", "checkout/refunds.py", "checkout/quotes.py", "checkout/receipts.py",
    "commerce/returns_policy.py", "points/ledger.py", "referrals/service.py",
    "rewards/service.py", "rewards/fulfilment.py", "points/service.py", "web/member_loyalty.py",
    "web/forms.py", "checkout/dayclose/closing.py", "checkout/dayclose/reopening.py",
    "shared/money.py",
]  # fmt: skip
DEFAULT_CODE = {"ValidationFailed": "invalid", "NotFound": "not_found", "Conflict": "conflict",
                "Forbidden": "forbidden", "DomainError": "invalid"}  # fmt: skip
CODE_FIRST = {"Refused", "CouponRefused", "RewardRefused"}  # (code, message, ctx)
MESSAGE_FIRST = {"Held"}  # (message, ctx)
PAGE_REFUSALS = {"_refused"}  # web/member_loyalty.py: (request, member_id, message)


def _catalog(lang: str) -> dict[str, str]:
    with (SRC / "web" / "locale" / f"{lang}.po").open("rb") as f:
        return {str(m.id): str(m.string) for m in read_po(f) if m.id and m.string}


def _refusals() -> list[tuple[str, str | None, ast.expr, ast.expr | None]]:
    """Each refusal raised or made in the till's modules: where, its code, its message, its
    ctx (expressions as written)."""
    found = []
    for module in TILL:
        tree = ast.parse((SRC / module).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            kw = {k.arg: k.value for k in node.keywords}
            code: str | None
            if name in CODE_FIRST and len(node.args) >= 2:
                first = node.args[0]
                code = first.value if isinstance(first, ast.Constant) else None
                message = node.args[1]
                ctx = node.args[2] if len(node.args) > 2 else kw.get("ctx")
            elif name in PAGE_REFUSALS and len(node.args) == 3:
                code, message, ctx = None, node.args[2], None
            elif name in MESSAGE_FIRST:
                code, message = "needs_approval", node.args[0]
                ctx = node.args[1] if len(node.args) > 1 else None
            elif name in DEFAULT_CODE:
                given = kw.get("code")
                code = given.value if isinstance(given, ast.Constant) else DEFAULT_CODE[name]
                message, ctx = node.args[0], kw.get("ctx")
            else:
                continue
            found.append((f"{module}:{node.lineno}", code, message, ctx))
    return found


def test_the_till_modules_are_read() -> None:
    found = _refusals()
    assert len(found) > 60
    assert sum(isinstance(m, ast.JoinedStr) for _, _, m, _ in found) > 25


@pytest.mark.parametrize("lang", ["zh-TW", "zh-CN"])
def test_each_refusal_of_fixed_words_is_in_the_catalog(lang: str) -> None:
    catalog = _catalog(lang)
    fixed = {m.value for _, _, m, _ in _refusals() if isinstance(m, ast.Constant)}
    assert sorted(fixed - catalog.keys()) == []


@pytest.mark.parametrize("lang", ["zh-TW", "zh-CN"])
def test_each_claim_refusal_is_in_the_catalog(lang: str) -> None:
    """The card says why a claim was refused (coupons/claims.py keeps them in a table)."""
    from omo.coupons import claims

    catalog = _catalog(lang)
    said = [message for _, message in [*claims._REFUSALS.values(), claims._OTHERWISE]]
    assert [m for m in said if m not in catalog] == []


def test_each_refusal_made_of_values_carries_them_under_a_sentence_s_names() -> None:
    wrong = []
    for where, code, message, ctx in _refusals():
        if not isinstance(message, ast.JoinedStr):
            continue  # words of fixed text, or a refusal passed on (checked where it is made)
        keys = ctx.keys if isinstance(ctx, ast.Dict) else None
        if keys is not None and None in keys:
            continue  # {**ctx, …}: the values of a refusal passed on, with more
        names = {k.value for k in keys or () if isinstance(k, ast.Constant)}
        if code is None or not names or refusals.sentence(code, dict.fromkeys(names)) is None:
            wrong.append(f"{where}: {code} {sorted(names)}")
    assert wrong == []


@pytest.mark.parametrize("lang", ["zh-TW", "zh-CN"])
def test_each_sentence_is_in_the_catalog_with_the_same_names(lang: str) -> None:
    catalog = _catalog(lang)
    for code, sentences in refusals.TEXTS.items():
        assert len({refusals.names(s) for s in sentences}) == len(sentences), code  # one each
        for s in sentences:
            assert s in catalog, s
            assert refusals.names(catalog[s]) == refusals.names(s), (lang, s)


def test_a_refusal_is_said_in_the_language_with_its_values_formatted() -> None:
    zh, en = Formats("zh-TW"), Formats("en")
    short = rules.Refused("min_spend_not_met",
                          "spend at least 500.00 on qualifying items (120.50 more)",
                          {"min_spend": "500.00", "short": "120.50"})  # fmt: skip
    assert refusals.said("zh-TW", zh, short) == "符合條件的商品須消費滿 NT$500（還差 NT$120.50）"
    assert refusals.said("en", en, short) == (
        "spend at least NT$500 on qualifying items (NT$120.50 more)")  # fmt: skip
    step = rules.Refused("coupon_next_step", "C1: 480.00 more on its goods takes 250.00 off",
                         {"coupon": "C1", "short": "480.00", "off": "250.00"})  # fmt: skip
    assert refusals.said("zh-TW", zh, step) == "C1: 再買 NT$480 可折 NT$250"
    points = InsufficientPoints(wanted=1200, available=300)
    assert refusals.said("zh-TW", zh, points) == "要用 1,200 點，可用 300 點"
    # the moment in Taipei time
    late = ValidationFailed("this quote expired at …", code="quote_expired",
                            ctx={"expires": "2026-12-06T16:30:00+00:00"})  # fmt: skip
    assert "2026年12月7日" in refusals.said("zh-TW", zh, late)
    # the coupon a commit refused goes first
    expired = ValidationFailed("X: expired", code="expired",
                               ctx={"valid_until": "2026-01-01T00:00:00+00:00", "coupon": "AB"})  # fmt: skip
    assert refusals.said("zh-TW", zh, expired).startswith("AB: 已於 ")
    # …and one of fixed words (a coupon used between the quote and the commit)
    used_meanwhile = CouponRefused(
        "already_used", "AB: this coupon has been used", {"coupon": "AB"}
    )
    assert refusals.said("zh-TW", zh, used_meanwhile) == "AB: 此優惠券已使用過"
    # fixed words by themselves; the web layer's own words; unknown words as they came
    used = Conflict("this coupon has been used")
    assert refusals.said("zh-TW", zh, used) == "此優惠券已使用過"
    assert refusals.said("zh-CN", Formats("zh-CN"), "price the basket first") == "请先计算价格"
    assert refusals.said("zh-TW", zh, NotFound("something new")) == "something new"
    assert refusals.said("zh-TW", zh, None) == ""


def test_values_that_are_not_what_their_names_say_are_shown_as_they_came() -> None:
    zh = Formats("zh-TW")
    odd = ValidationFailed("x", code="price_changed", ctx={"quoted": "a lot", "total": Decimal(5)})
    said = refusals.said("zh-TW", zh, odd)
    assert "a lot" in said and "NT$5" in said
    # values under names no sentence has: the English as it came
    other = ValidationFailed("the price changed", code="price_changed", ctx={"then": 1})
    assert refusals.said("zh-TW", zh, other) == "the price changed"


def test_a_translation_that_breaks_its_braces_falls_back_to_english(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = {"{wanted} points wanted, {available} available": "要用 {wanted} 點，可用 {餘額} 點"}
    monkeypatch.setattr(refusals, "gettext", lambda _lang, text: broken.get(text, text))
    said = refusals.said("zh-TW", Formats("zh-TW"), InsufficientPoints(wanted=3, available=1))
    assert said == "3 points wanted, 1 available"


def test_money_is_said_whole_or_with_both_cents() -> None:
    """NT$1,000 and NT$120.50 (not NT$120.5): a price with cents shows both digits."""
    zh = Formats("zh-TW")
    assert [zh.money(v) for v in ("1000", "120.5", "0.05", "1234.10", "-40")] == [
        "NT$1,000", "NT$120.50", "NT$0.05", "NT$1,234.10", "NT$-40"]  # fmt: skip


# --- docs/till.md: the integrator's table of refusals and notices, kept to the code ---

DOC = SRC.parent.parent / "docs" / "till.md"
# what an integration's calls can be refused with: the till's modules and the API's own
API_TILL = [*TILL, "checkout/pricing.py", "checkout/best.py", "points/rules.py",
            "apikeys/service.py", "checkout/dayclose/reopening.py",
            "checkout/dayclose/days.py", "checkout/dayclose/journal.py"]  # fmt: skip
PAGE_ONLY = {"basket_changed", "approval_refused"}  # OMO's own till page's, not the API's
NOTICES = {"Note"}  # checkout/pricing.py's notices: (reason, message, ctx)


def _codes_in(modules: list[str]) -> tuple[set[str], set[str]]:
    """The refusals' codes and the quote notices' reasons written in `modules`: a `code=`
    given to any call, a class's `code = …`, the first argument of a refusal or notice made
    code first, a QuoteNotice's `reason=`."""
    codes: set[str] = set()
    notices: set[str] = set()
    for module in modules:
        for node in ast.walk(ast.parse((SRC / module).read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                for st in node.body:
                    if (isinstance(st, ast.Assign) and isinstance(st.value, ast.Constant)
                            and any(getattr(t, "id", None) == "code" for t in st.targets)):  # fmt: skip
                        codes.add(st.value.value)
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            kw = {k.arg: k.value for k in node.keywords}
            first = node.args[0] if node.args else None
            if isinstance(kw.get("code"), ast.Constant):
                codes.add(kw["code"].value)  # type: ignore[union-attr]
            if name in CODE_FIRST and isinstance(first, ast.Constant):
                codes.add(first.value)
            if name in NOTICES and isinstance(first, ast.Constant):
                notices.add(first.value)
            if name == "QuoteNotice" and isinstance(kw.get("reason"), ast.Constant):
                notices.add(kw["reason"].value)  # type: ignore[union-attr]
    return codes - PAGE_ONLY, notices


def _rows(text: str) -> set[str]:
    """The codes a table's rows start with: | `code` | …"""
    return {line.split("`")[1] for line in text.splitlines() if line.startswith("| `")}


def test_the_integrators_guide_has_a_row_for_every_refusal_and_notice() -> None:
    text = DOC.read_text(encoding="utf-8")
    refusal_part = text.split("## Refusals", 1)[1].split("### A quote's notices", 1)
    codes, notices = _codes_in(API_TILL)
    assert len(codes) > 40 and len(notices) >= 8  # the modules are read
    documented = _rows(refusal_part[0])
    assert sorted(codes - documented) == []  # a refusal added: say it in docs/till.md
    assert sorted(documented - codes - set(DEFAULT_CODE.values())) == []  # no longer made
    assert sorted(notices ^ _rows(refusal_part[1])) == []
