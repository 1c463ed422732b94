"""The POS staff page's steps: find the member (phone, card, scanned member QR) or enrol them
(with a friend's referral code), price a basket with their tier, coupons and points, and commit
the sale at the staff member's store, or hand over a reward the member buys with points or
redeemed earlier in the app — through the same use cases as a till's API calls."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import ValidationError as PydanticError
from sqlalchemy.orm import Session

from omo.apikeys.service import Principal
from omo.checkout import best, quotes, receipts
from omo.checkout import service as checkout
from omo.checkout.receipts import OrderDetail
from omo.checkout.refunds import RefundQuote, RefundResult
from omo.checkout.schemas import CommitQuote, CommitResult, QuoteRead, QuoteRequest
from omo.commerce import service as commerce
from omo.commerce.schemas import OrderRead, StoreRead
from omo.coupons import service as coupons
from omo.coupons.schemas import CouponRead
from omo.customer_view import service as customer_view
from omo.db import UnitOfWork
from omo.ingest import service as ingest
from omo.ingest.schemas import EnrolResult
from omo.members import service as members
from omo.members.identifiers import InvalidIdentifier, normalise
from omo.members.schemas import MemberSummary, MemberUpsert
from omo.points import service as points
from omo.points.schemas import Expiring
from omo.rewards import fulfilment
from omo.rewards import service as rewards
from omo.rewards.schemas import (
    RedemptionFulfil,
    RedemptionRead,
    RedemptionRow,
    RewardRead,
    RewardRedeem,
)
from omo.shared import clock
from omo.shared.errors import DomainError, ValidationFailed
from omo.shared.schemas import MAX_ID
from omo.tiers import service as tiers
from omo.users.roles import Permission, may
from omo.users.service import SignedIn
from omo.web import card, coupon_terms, pos_returns
from omo.web.forms import whole_number

MAX_LINES = 8
REWARDS_SHOWN = 8


@dataclass
class Customer:
    id: int
    name: str | None
    tier: str
    points: int
    coupons: list[CouponRead]
    recent: list[OrderRead]  # their last orders, each with its receipt number to return from
    rewards: list[tuple[RewardRead, bool]]  # on offer to them; whether their points reach it
    redeem_key: str  # made when shown: pressing Redeem twice hands over one
    owed: list[RedemptionRow]  # redeemed earlier (the app, the web shop), not yet handed over
    store_names: dict[str, str]  # of the stores its coupons are limited to, by code
    expiring: Expiring | None = None  # the points that expire first, if within EXPIRING_SOON_DAYS
    ending: frozenset[str] = frozenset()  # the codes of its coupons that end within a week


EXPIRING_SOON_DAYS = 60  # the till reminds the cashier of points expiring this soon
COUPON_ENDING_DAYS = 7  # …and of coupons that end this soon


def find(uow: UnitOfWork, *, text: str, secret: str, region: str) -> list[MemberSummary]:
    """Who the staff member means: a scanned or typed member-card reference, else what the
    member search understands (phone, e-mail, card number, name)."""
    text = text.strip()
    if text.startswith(card.PREFIX):
        member_id = card.member_of(secret, text)
        if member_id is None:
            raise ValidationFailed("this member code is not valid or too old", field="q")
        text = f"#{member_id}"
    return customer_view.find(uow, text=text, region=region)


def customer(uow: UnitOfWork, *, member_id: int) -> Customer:
    view = customer_view.customer_view(uow, member_id=member_id, timeline_limit=0)
    mid = view.member.id
    usable = [c for c in coupons.member_coupons(uow, member_id=mid) if c.state == "usable"]
    balance = points.summary(uow, member_id=mid, history=0)
    soon = clock.now() + timedelta(days=EXPIRING_SOON_DAYS)
    return Customer(
        id=mid, name=view.member.name, tier=tiers.member_tier(uow, member_id=mid).name,
        points=balance.available, coupons=usable,
        expiring=next((e for e in balance.expiring if e.expires_at <= soon), None),
        ending=frozenset(c.code for c in usable if c.valid_until is not None
                         and c.valid_until <= clock.now() + timedelta(days=COUPON_ENDING_DAYS)),
        recent=receipts.member_orders(uow, member_id=mid, limit=5, before=None),
        rewards=rewards.on_offer(uow, member_id=mid, limit=REWARDS_SHOWN),
        redeem_key=f"UI-R-{secrets.token_hex(8)}",
        owed=fulfilment.owed(uow, store=None, reward=None, limit=REWARDS_SHOWN, member_id=mid,
                             vouchers=False),
        store_names=coupon_terms.store_names(uow, usable),
    )  # fmt: skip


def stores_for(uow: UnitOfWork, user: SignedIn) -> list[StoreRead]:
    """The stores this user may sell at: their own, or every store for roles without one."""
    stores = commerce.get_stores(uow)
    return [s for s in stores if user.store_id in (None, s.id)]


def basket(form: dict[str, Any], *, user: SignedIn, stores: list[StoreRead]) -> dict[str, Any]:
    """The basket the form describes, as a checkout request body (422 with the field if bad)."""
    codes = {s.id: s.code for s in stores}
    store_id = user.store_id or whole_number(form.get("store_id"), "store_id")
    if store_id not in codes:
        raise ValidationFailed("choose one of your stores", field="store_id")
    lines = []
    for n in range(MAX_LINES):
        sku = str(form.get(f"sku{n}", "")).strip()
        if sku:
            quantity = whole_number(form.get(f"qty{n}") or 1, f"qty{n}")
            lines.append({"sku": sku, "quantity": quantity})
    if not lines:
        raise ValidationFailed("add at least one item", field="sku0")
    typed = COUPON_SEPARATORS.split(str(form.get("coupon", "")))
    coupons_given = [code.strip() for code in typed if code.strip()]
    return {
        "member_id": whole_number(form.get("member_id"), "member_id"), "channel": "pos",
        "store": codes[store_id], "lines": lines, "coupon_codes": coupons_given,
        "points": whole_number(form.get("points") or 0, "points"),
    }  # fmt: skip


# the coupon field may hold several codes, one a line (a scanner's Enter) or between commas;
# spaces stay inside a code (abcd efgh ijkl is one, as typed from a card)
COUPON_SEPARATORS = re.compile(r"[,，、;；\r\n]+")


def quote(
    uow: UnitOfWork, *, body: dict[str, Any], region: str, secret: str, unit: Decimal,
    pick: bool = False,
) -> QuoteRead:  # fmt: skip
    """The basket's price; with `pick`, with the member's coupons that take the most off
    added to those typed (checkout/best.py)."""
    req = QuoteRequest.model_validate(body)
    if pick:
        return best.best_quote(uow, req=req, region=region, secret=secret, unit=unit)
    return checkout.quote(uow, req=req, region=region, secret=secret, unit=unit)


def new_sale_id(store_code: str) -> str:
    """The till's order id, made when the basket is priced: submitting twice records once."""
    return f"UI-{store_code}-{secrets.token_hex(6)}"


def commit(
    uow: UnitOfWork, *, body: dict[str, Any], sale_id: str, quote: str, user: SignedIn,
    currency: str, region: str, secret: str, unit: Decimal,
) -> CommitResult:  # fmt: skip
    """The sale at the total the customer was shown (the quote's), or a refusal: a basket
    edited after it was priced, or a price changed since, is priced again first."""
    if not quote:
        raise ValidationFailed("price the basket first", field="quote")
    if quotes.unseal(quote, secret=secret).req != QuoteRequest.model_validate(body):
        raise ValidationFailed(
            "the basket changed since it was priced: price it again", field="quote",
            code="basket_changed",
        )  # fmt: skip
    principal = Principal(name=f"ui:{user.username}", store_id=user.store_id)
    return checkout.commit_quote(
        uow, body=CommitQuote(quote=quote, external_id=sale_id), principal=principal,
        currency=currency, region=region, secret=secret, unit=unit,
    )  # fmt: skip


def redeem(
    uow: UnitOfWork, *, form: dict[str, Any], member_id: int, user: SignedIn,
    stores: list[StoreRead],
) -> RedemptionRead:  # fmt: skip
    """Hand over a reward for the member's points, at the staff member's store (if they have
    one); the key made when the member was shown keeps a second press from spending twice. A
    partner's reward is not handed over: the member gets its voucher to show the partner."""
    store = next((s.code for s in stores if s.id == user.store_id), None)
    code = str(form.get("reward", ""))
    partner = rewards.get_reward(uow, code=code).kind == "partner"
    req = RewardRedeem.model_validate(
        {"idempotency_key": form.get("redeem_key", ""), "channel": "pos", "store": store,
         "handed_over": not partner}
    )  # fmt: skip
    return rewards.redeem(uow, member_id=member_id, code=code, req=req,
                          actor=f"ui:{user.username}")  # fmt: skip


def hand_over(
    uow: UnitOfWork, *, form: dict[str, Any], member_id: int, user: SignedIn,
    stores: list[StoreRead],
) -> RedemptionRead:  # fmt: skip
    """Hand over a reward the member redeemed earlier, at the staff member's store; it must be
    this member's (the key comes from their list), and a second press is refused."""
    key = str(form.get("redemption", ""))
    owed = fulfilment.owed(uow, store=None, reward=None, limit=1000, member_id=member_id,
                           vouchers=False)  # fmt: skip
    if key not in {r.idempotency_key for r in owed}:
        raise ValidationFailed("not a reward this member is owed", field="redemption")
    store = next((s.code for s in stores if s.id == user.store_id), None)
    return fulfilment.fulfil(uow, idempotency_key=key, req=RedemptionFulfil(store=store),
                             actor=f"ui:{user.username}")  # fmt: skip


def enrol(
    uow: UnitOfWork, *, form: dict[str, Any], user: SignedIn, stores: list[StoreRead],
    region: str,
) -> EnrolResult:  # fmt: skip
    """Join at the till: the customer's phone, a name if they give one, the consents they give
    aloud, and a friend's referral code — typed, or their referral link as the scanner reads
    it — at the staff member's store, with the programme's sign-up bonus. A phone that is
    already a member's is refused (find them instead), in the same transaction as the
    enrolment, so two tills cannot both enrol one phone."""
    phone = str(form.get("phone", "")).strip()
    if not phone:
        raise ValidationFailed("the customer's phone", field="phone")
    store = next((s.code for s in stores if s.id == user.store_id), None)
    identifiers = [{"kind": "phone", "value": phone}]
    if email := str(form.get("email", "")).strip():
        identifiers.append({"kind": "email", "value": email})
    data = MemberUpsert.model_validate({
        "identifiers": identifiers, "name": str(form.get("name", "")).strip() or None,
        "join_channel": "pos", "join_store": store,
        "consents": {ch: True for ch in ("sms", "email") if form.get(f"consent_{ch}")},
        "referral_code": referral_code(str(form.get("referral_code", ""))),
    })  # fmt: skip
    try:
        ident = normalise("phone", phone, region=region)
    except InvalidIdentifier as exc:
        raise ValidationFailed(str(exc), field="phone") from None
    idents = ingest.normalise_all(data.identifiers, field="identifiers", region=region)
    principal = Principal(name=f"ui:{user.username}", store_id=user.store_id)

    def run(session: Session) -> EnrolResult:
        if members.members_named_by(session, [ident]):
            raise ValidationFailed("this phone is already a member's: find them", field="phone")
        return ingest.enrol_in(session, data=data, idents=idents, principal=principal,
                               now=clock.now(), welcome=True)  # fmt: skip

    return uow.run(run)


def referral_code(text: str) -> str | None:
    """A friend's code as typed, or read from their referral link (…?ref=CODE)."""
    text = text.strip()
    if "ref=" in text:
        text = parse_qs(urlsplit(text).query).get("ref", [""])[0]
    return text or None


@dataclass
class PosState:
    """What the page shows after a step."""

    query: str = ""
    found: list[MemberSummary] | None = None
    customer: Customer | None = None
    form: dict[str, str] | None = None
    priced: QuoteRead | None = None
    sale_id: str | None = None
    done: CommitResult | None = None
    redeemed: RedemptionRead | None = None
    handed: RedemptionRead | None = None
    joined: bool = False  # the customer was enrolled at this step
    order: OrderDetail | None = None  # a return: the order the receipt names
    refund_key: str | None = None  # made when the order is shown: two presses give back once
    refunded: RefundResult | None = None
    weighed: RefundQuote | None = None  # what the units chosen would give back, not given yet
    lowered_to: str | None = None  # the name of the level a return put the member back to
    may_approve: bool = False  # the user lets refunds past the returns policy themselves
    needs_approval: bool = False  # the returns policy held the last refund back
    error: DomainError | str | None = None  # said in the page's language (web/refusals.py)


STEPS = ("lookup", "enrol", "quote", "best", "commit", "redeem", "hand_over", "find_order",
         "refund")  # fmt: skip


def _return_step(
    uow: UnitOfWork, state: PosState, *, action: str, form: dict[str, str], user: SignedIn,
    unit: Decimal,
) -> PosState:  # fmt: skip
    """A return: find the receipt's order, or give back what was chosen of it. A refusal keeps
    the order on the page, as it is now, for the staff member to correct what they chose."""
    state.refund_key = form.get("refund_key") or pos_returns.new_refund_key()
    state.may_approve = may(user.role, Permission.APPROVE_REFUNDS)
    try:
        if action == "find_order":
            state.order = pos_returns.find(uow, form=form, unit=unit)
        elif form.get("weigh"):
            state.weighed = pos_returns.weigh(uow, form=form, unit=unit)
            state.order = receipts.get_order(uow, order_id=int(form["order_id"]), unit=unit)
        else:
            state.refunded = pos_returns.give_back(uow, form=form, user=user, unit=unit)
            state.order = receipts.get_order(uow, order_id=state.refunded.order.id, unit=unit)
            if state.refunded.tier_lowered_to is not None:
                levels = tiers.get_programme(uow).programme
                state.lowered_to = levels.level(state.refunded.tier_lowered_to).name
            state.refund_key = pos_returns.new_refund_key()  # for a later return of the rest
    except DomainError as exc:
        state.needs_approval = exc.code in ("needs_approval", "approval_refused")
        shown = str(form.get("order_id", ""))
        if action == "refund" and shown.isdigit() and int(shown) <= MAX_ID:
            state.order = receipts.get_order(uow, order_id=int(shown), unit=unit)
        raise
    return state


def step(
    uow: UnitOfWork, *, form: dict[str, str], user: SignedIn, stores: list[StoreRead],
    secret: str, region: str, currency: str, unit: Decimal,
) -> PosState:  # fmt: skip
    """The till's one step (lookup, enrol, quote, commit, redeem or hand over); a refusal comes
    back as the page's error, with what was typed kept."""
    action = form.get("action", "lookup")
    state = PosState(query=form.get("q", ""), form=form)
    try:
        if action not in STEPS:
            raise ValidationFailed(
                f"unknown step {action!r}", field="action", ctx={"action": action}
            )
        if action in ("find_order", "refund"):
            return _return_step(uow, state, action=action, form=form, user=user, unit=unit)
        if action == "enrol":
            state.found = []  # the join form stays up if it is refused
            joined = enrol(uow, form=form, user=user, stores=stores, region=region)
            state.customer, state.joined = customer(uow, member_id=joined.member.id), True
            return state
        if action == "lookup":
            state.found = find(uow, text=state.query, secret=secret, region=region)
            if len(state.found) == 1:
                state.customer = customer(uow, member_id=state.found[0].id)
            return state
        state.customer = customer(uow, member_id=whole_number(form.get("member_id"), "member_id"))
        if action == "redeem":
            state.redeemed = redeem(uow, form=form, member_id=state.customer.id, user=user,
                                    stores=stores)  # fmt: skip
            state.customer = customer(uow, member_id=state.customer.id)  # after it
            return state
        if action == "hand_over":
            state.handed = hand_over(uow, form=form, member_id=state.customer.id, user=user,
                                     stores=stores)  # fmt: skip
            state.customer = customer(uow, member_id=state.customer.id)  # after it
            return state
        body = basket(form, user=user, stores=stores)
        if action in ("quote", "best"):
            state.priced = quote(uow, body=body, region=region, secret=secret, unit=unit,
                                 pick=action == "best")  # fmt: skip
            # the points the quote took (it lowers more than the cap or off a step), and the
            # coupons it picked: the sale is of what the customer was shown
            state.form = {**form, "points": str(state.priced.points_redeemed),
                          "coupon": ", ".join(c.code for c in state.priced.coupons)}  # fmt: skip
            state.sale_id = new_sale_id(body["store"])
        elif action == "commit":
            sale_id = form.get("sale_id", "")
            if not sale_id.startswith("UI-"):
                raise ValidationFailed("price the basket first", field="sale_id")
            state.done = commit(
                uow, body=body, sale_id=sale_id, quote=form.get("quote", ""), user=user,
                currency=currency, region=region, secret=secret, unit=unit,
            )  # fmt: skip
            state.customer = customer(uow, member_id=state.customer.id)  # after the sale
    except DomainError as exc:
        state.error = exc
    except PydanticError as exc:
        first = exc.errors()[0]
        state.error = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return state
