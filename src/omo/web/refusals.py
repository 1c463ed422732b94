"""A refusal said in the page's language (the till's, the admin pages').

A domain refusal (shared/errors.py) is English. One of fixed words is looked up as it is in the
language's catalog. One made of values (an amount, a date, a code) is found by its code and the
names of its values: each such refusal has an English sentence here with the values as
{placeholders}; that sentence is the catalog's msgid, and the values are put into the
translation formatted for the language (NT$, dates in Taipei time). A refusal not found either
way is shown as it came. tests/unit/test_refusals.py holds the modules a till reaches to this.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from string import Formatter
from typing import Any, Protocol

from omo.shared.errors import DomainError
from omo.web.i18n import Formats, gettext

# code → the English sentences of refusals made of values; the one whose {placeholders} are
# the refusal's ctx names is said
TEXTS: dict[str, tuple[str, ...]] = {
    # coupons (coupons/rules.py)
    "per_order_limit": ("at most {limit} of these coupons in one order",),
    "not_yet_valid": ("valid from {valid_from}",),
    "expired": ("expired at {valid_until}",),
    "not_today": ("only on days {weekdays} of the week (1 is Monday)",),
    "outside_hours": ("only from {starts} until {ends}",),
    "channel_not_allowed": ("not valid on {channel}",),
    "min_spend_not_met": (
        "spend at least {min_spend} on qualifying items ({short} more)",
        "spend {spend} to take {amount} off ({short} more)",
    ),
    "min_items_not_met": ("buy at least {min_items} qualifying items ({items} now)",),
    "free_item_missing": ("add {sku} to the basket to get it free",),
    "level_price_better": (
        "the level's price comes to {without} without this coupon, {with_coupon} with it",
    ),
    # checkout
    "price_changed": (
        "the price changed since the quote: {quoted} then, {total} now; quote again",
    ),
    "points_over_cap": ("at most {cap} points on this basket (balance {balance})",),
    "points_not_in_steps": ("points are redeemed in steps of {step}",),
    "order_too_large": ("the basket comes to {amount}, more than one order may ({max_order})",),
    "too_many_points": (
        "{points} points at once: one entry of the ledger holds at most {max_entry}",
    ),
    # a quote's notices (checkout/pricing.py Note): what it did not take as asked
    "points_lowered_to_cap": ("points lowered from {wanted} to the cap {cap}",),
    "points_lowered_to_step": ("points lowered to a multiple of {step}",),
    "points_below_minimum": ("at least {min_redeem} points per redemption",),
    "no_level_price": ("no level price with a coupon of {coupons}",),
    "no_level_price_here": ("no level price on {channel}",),
    "coupons_picked": ("coupons picked: {coupons}",),
    "coupon_next_step": ("{short} more on its goods takes {off} off",),
    "points_not_here": ("points do not pay on {channel}",),
    "insufficient_points": ("{wanted} points wanted, {available} available",),
    "quote_expired": ("this quote expired at {expires}: quote again",),
    "needs_approval": (
        "a refund of more than {over} needs a manager's approval",
        "a refund more than {days} days after the sale needs a manager's approval",
    ),
    "not_found": (
        "no order {order_id}",
        "no {channel} order {receipt}",
        "no order {before} of this member",
        "no reward {reward}",
        "no voucher {voucher}",
        "no coupon template {template}",
        "no reward redemption with key {key}",
        "no redemption with key {redemption_key}",
        "member {member_id} does not exist",
    ),
    "invalid": (
        "{sku} is not in the catalogue: give its unit_price",
        "the order has no line {line}",
        "line {line}: {left} left to return",
        "unknown step {action}",
        "unknown channel {channel}",
        "no tier level {level} in the programme ({levels})",
        "at least {min_redeem} points per redemption",
        "{amount} is not a whole number of the price unit {unit}",
    ),
    "conflict": (
        "idempotency key {key} was used for another change",
        "redemption key {redemption_key} was used for another coupon",
        "member {member} gave back more of member {other}'s points than it took; adjust the "
        "balances, then undo",
        "member {member} spent {points} of member {other}'s points since the merge and has no "
        "points left to cover them; adjust the balances, then undo",
    ),
    # rewards (rewards/service.py, rewards/fulfilment.py)
    "out_of_stock": ("{reward}: not enough left ({quantity} asked)",),
    "reward_inactive": ("{reward} is not offered",),
    "reward_not_yet": ("{reward} is offered from {moment}",),
    "reward_ended": ("{reward} was offered until {moment}",),
    "tier_too_low": (
        "{reward} is for {level} and above ({now} now)",
        "for {level} and above ({now} now)",  # a coupon's (coupons/rules.py)
    ),
    "over_member_limit": ("{reward}: at most {limit} a member ({held} redeemed)",),
    "wrong_fulfilment": (
        "{key} came with a voucher: it is fulfilled by using the voucher",
        "{redemption} came with no voucher: fulfil it by its key",
    ),
    "redemption_cancelled": ("{key} was cancelled on {moment}",),
    "voucher_used": (
        "{voucher} was used on {moment}",
        "{voucher} was used on {moment} at {store}",
        "{voucher} was used at the partner on {used_at}; it cannot come back",
    ),
    "already_fulfilled": (
        "{key} was handed over or sent on {moment}",
        "{key} was handed over or sent on {moment} at {store}",
        "{reward} was handed over on {moment}: cancel it with returned once it is back",
    ),
    "stock_unlimited": ("{reward} has no stock count (unlimited); give it one with PUT",),
    "stock_below_zero": ("{reward}: {stock} left, cannot write off {units}",),
    # a store's day (checkout/dayclose/closing.py)
    "day_not_over": ("{day} is not over until {until}: a day is closed once it has ended",),
    "day_not_closed": ("{store}'s {day} is not closed: there is nothing to reopen",),
}
MONEY = frozenset({"min_spend", "spend", "amount", "quoted", "total", "over", "without",
                   "with_coupon", "short", "off", "unit", "max_order"})  # fmt: skip
# points and units, grouped by thousands (an id or a line number is shown as it is)
COUNTS = frozenset({"wanted", "available", "cap", "balance", "quantity", "stock", "units",
                    "points", "min_redeem", "step", "max_entry"})  # fmt: skip
MOMENTS = frozenset(
    {"valid_from", "valid_until", "expires", "moment", "used_at", "until"}
)  # ISO 8601, UTC
PREFIX = "coupon"  # a value said before the sentence: the coupon code a commit refused


def names(sentence: str) -> frozenset[str]:
    """The {placeholders} of a sentence."""
    return frozenset(name for _, name, _, _ in Formatter().parse(sentence) if name)


def sentence(code: str, ctx: Mapping[str, Any]) -> str | None:
    """The English sentence of a refusal made of these values, if there is one."""
    wanted = frozenset(ctx) - {PREFIX}
    return next((s for s in TEXTS.get(code, ()) if names(s) == wanted), None)


def say(lang: str, fmt: Formats, *, code: str | None, message: str, ctx: Mapping[str, Any]) -> str:
    """A refusal in `lang`: its sentence with its values in, else its fixed words, else as
    it came (English). A coupon code in ctx (a commit's refusal, "CODE: …") is said first."""
    if PREFIX in ctx:
        prefix = str(ctx[PREFIX])
        rest = {k: v for k, v in ctx.items() if k != PREFIX}
        bare = message.removeprefix(f"{prefix}: ")
        return f"{prefix}: {say(lang, fmt, code=code, message=bare, ctx=rest)}"
    found = sentence(code, ctx) if code and ctx else None
    if found is None:
        return gettext(lang, message)
    values = {k: _formatted(fmt, k, v) for k, v in ctx.items()}
    try:
        return gettext(lang, found).format(**values)
    except (KeyError, IndexError, ValueError):  # a translation with a brace it should not have
        return found.format(**values)


class Refusal(Protocol):
    """A coupon refused in a quote or a check (CouponLine, CouponCheck)."""

    @property
    def reason(self) -> str | None: ...
    @property
    def message(self) -> str | None: ...
    @property
    def ctx(self) -> Mapping[str, Any]: ...


def said(lang: str, fmt: Formats, what: DomainError | Refusal | str | None) -> str:
    """What a page shows of a refusal: a domain error, a coupon's refusal, or words of the web
    layer's own (looked up as they are)."""
    if what is None:
        return ""
    if isinstance(what, str):
        return gettext(lang, what)
    if isinstance(what, DomainError):
        return say(lang, fmt, code=what.code, message=what.message, ctx=what.ctx)
    message = what.message or what.reason or ""
    return say(lang, fmt, code=what.reason, message=message, ctx=what.ctx)


def _formatted(fmt: Formats, name: str, value: Any) -> str:
    try:
        if name in MONEY:
            return fmt.money(Decimal(str(value)))
        if name in MOMENTS:
            return fmt.when(datetime.fromisoformat(str(value)))
    except (ValueError, InvalidOperation):
        return str(value)  # not what its name promises: shown as it came
    if name in COUNTS and isinstance(value, int) and not isinstance(value, bool):
        return fmt.number(value)
    return str(value)
