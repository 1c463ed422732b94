"""What using a coupon asks (coupons.schemas.CouponTerms), said in a page's language: the
member card and the till tell it before the coupon is tried (滿 NT$1,000 · 任選 3 件 ·
限週六、週日)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from omo.commerce import service as commerce
from omo.coupons.schemas import ClaimableRead, CouponRead, CouponTerms
from omo.db import UnitOfWork
from omo.web.i18n import Formats, gettext


def store_names(uow: UnitOfWork, held: Iterable[CouponRead | ClaimableRead]) -> dict[str, str]:
    """The names of the stores these coupons (held or to claim) are limited to, by code (no
    read if none is)."""
    if not any(c.terms.stores for c in held):
        return {}
    return {s.code: s.name for s in commerce.get_stores(uow)}


def said(
    lang: str, fmt: Formats, t: CouponTerms, stores: Mapping[str, str] | None = None
) -> list[str]:
    """Each condition as a short phrase, in the order a member weighs them; `stores`: store
    names by code (a code without one is said as it is)."""
    out: list[str] = []
    sep = "、" if lang.startswith("zh") else ", "

    def add(text: str, **values: str) -> None:
        out.append(gettext(lang, text) % values if values else gettext(lang, text))

    if t.every:
        add("for every %(amount)s spent", amount=fmt.money(t.every))
    if t.steps:
        out.append(sep.join(gettext(lang, "%(off)s off from %(spend)s") % {
            "off": fmt.money(a), "spend": fmt.money(s)} for s, a in t.steps))  # fmt: skip
    first = t.every or (t.steps[0][0] if t.steps else None)
    if t.min_spend and (first is None or t.min_spend > first):
        add("spend %(amount)s or more", amount=fmt.money(t.min_spend))
    if t.max_discount:
        add("up to %(amount)s off", amount=fmt.money(t.max_discount))
    if t.min_items:
        add("%(n)s items or more", n=fmt.number(t.min_items))
    if t.categories:
        add("only %(categories)s", categories=sep.join(t.categories))
    if t.excluded_categories:
        add("not %(categories)s", categories=sep.join(t.excluded_categories))
    if t.channels:
        add("only on %(channels)s", channels=sep.join(t.channels))
    if t.stores:
        names = stores or {}
        add("only at %(stores)s", stores=sep.join(names.get(s, s) for s in t.stores))
    if t.weekdays:
        add("on %(days)s", days=sep.join(fmt.weekday(d) for d in t.weekdays))
    if t.hours:
        add("from %(start)s to %(end)s", start=t.hours[0].strftime("%H:%M"),
            end=t.hours[1].strftime("%H:%M"))  # fmt: skip
    if t.min_level:
        add("for %(level)s and above", level=t.min_level)
    if t.first_order_only:
        add("first order only")
    if not t.with_level_price:
        add("not with the member price")
    return out
