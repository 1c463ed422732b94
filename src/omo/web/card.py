"""The member card: a signed link (from LINE, an e-mail, the app) opens a phone-sized page
with the member's QR code, tier and progress, the month's free shipments, points and what
expires, their coupons, the rewards they redeemed and have yet to collect (a partner's voucher
with its QR, to show at the partner), the rewards on offer (those their points reach first),
and their referral link with its QR and the friends it brought. The member's QR holds the same
signed reference, which the POS page reads back to the member."""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass

import segno

from omo.coupons import claims
from omo.coupons import service as coupons
from omo.coupons.schemas import ClaimableRead, CouponRead
from omo.db import UnitOfWork
from omo.members import service as members
from omo.members.cards import PREFIX as PREFIX
from omo.members.cards import card_token as card_token
from omo.members.cards import member_of as member_of
from omo.points import service as points
from omo.points.schemas import PointsSummary
from omo.referrals import service as referrals
from omo.referrals.service import ReferralCodeRead
from omo.rewards import fulfilment
from omo.rewards import service as rewards
from omo.rewards.schemas import RedemptionRow, RewardRead
from omo.tiers import service as tiers
from omo.tiers.schemas import MemberTierRead
from omo.web import coupon_terms

HISTORY = 10  # the card's points history: the last changes


def qr_svg(text: str) -> str:
    out = io.BytesIO()
    # a viewBox and no fixed size, so that the page's CSS scales the drawing, not just its box
    segno.make(text, error="m").save(
        out, kind="svg", scale=5, border=2, xmldecl=False, omitsize=True
    )
    return out.getvalue().decode()


@dataclass
class Card:
    member_id: int
    name: str | None
    token: str
    qr: str
    tier: MemberTierRead
    points: PointsSummary
    coupons: list[tuple[CouponRead, str]]  # each coupon usable now, with its QR
    upcoming: list[CouponRead]  # the member's, valid from a day to come: shown, not scannable
    # on offer now to the member's level, and whether their points reach it
    rewards: list[tuple[RewardRead, bool]]
    # redeemed, not yet collected or used: each with its voucher's QR (partner rewards)
    owed: list[tuple[RedemptionRow, str | None]]
    # the member's referral code, link and terms, with the link's QR to show a friend
    referral: ReferralCodeRead
    referral_qr: str
    store_names: dict[str, str]  # of the stores its coupons are limited to, by code
    claimable: list[ClaimableRead]  # what the member may claim now (領券中心)
    claim_key: str  # this page's: a second tap of its button claims nothing more


REWARDS_SHOWN = 12


def card(uow: UnitOfWork, *, secret: str, token: str, referral_link: str) -> Card | None:
    member_id = member_of(secret, token)
    if member_id is None:
        return None
    with uow.read() as session:
        member = members.current_member(session, member_id)  # a merged card leads on
        mid, name = member.id, member.name
    mine = coupons.member_coupons(uow, member_id=mid)
    offered = claims.claimable(uow, member_id=mid)
    held = [c for c in mine if c.state == "usable"]
    current = card_token(secret, mid)
    referral = referrals.code_for(uow, member_id=mid, link=referral_link)
    return Card(
        member_id=mid, name=name, token=current, qr=qr_svg(current),
        tier=tiers.member_tier(uow, member_id=mid),
        points=points.summary(uow, member_id=mid, history=HISTORY),
        coupons=[(c, qr_svg(c.code)) for c in held],
        upcoming=sorted((c for c in mine if c.state == "not_yet_valid"),
                        key=lambda c: (c.valid_from is None, c.valid_from, c.code)),
        rewards=rewards.on_offer(uow, member_id=mid, limit=REWARDS_SHOWN),
        owed=[(r, qr_svg(r.voucher) if r.voucher else None) for r in fulfilment.owed(
            uow, store=None, reward=None, limit=REWARDS_SHOWN, member_id=mid)],
        referral=referral, referral_qr=qr_svg(referral.link),
        store_names=coupon_terms.store_names(uow, [*mine, *offered]),
        claimable=offered, claim_key=secrets.token_hex(8),
    )  # fmt: skip


def claim(
    uow: UnitOfWork, *, secret: str, token: str, template: str, key: str
) -> CouponRead | None:
    """The member of a card link claims a coupon (its button's key); None for a link that is
    not valid. A refusal is raised as the claim raises it."""
    member_id = member_of(secret, token)
    if member_id is None:
        return None
    return claims.claim(uow, member_id=member_id, template_code=template, key=key)
