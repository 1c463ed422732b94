"""Merge support for coupons: a member's coupons and redemptions follow them into the member
they are merged into, and go back on an undo (identity calls these, never the tables)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from omo.coupons.models import Coupon, CouponRedemption
from omo.shared import reassign


def reassign_coupons(session: Session, mapping: Mapping[int, int]) -> dict[int, list[int]]:
    return reassign.reassign_rows(
        session, id_col=Coupon.id, member_col=Coupon.member_id, mapping=mapping
    )


def restore_coupons(session: Session, *, row_ids: Sequence[int], from_id: int, to_id: int) -> None:
    reassign.restore_rows(
        session, id_col=Coupon.id, member_col=Coupon.member_id, row_ids=list(row_ids),
        from_id=from_id, to_id=to_id,
    )  # fmt: skip


def reassign_redemptions(session: Session, mapping: Mapping[int, int]) -> dict[int, list[int]]:
    return reassign.reassign_rows(
        session, id_col=CouponRedemption.id, member_col=CouponRedemption.member_id,
        mapping=mapping,
    )  # fmt: skip


def restore_redemptions(
    session: Session, *, row_ids: Sequence[int], from_id: int, to_id: int
) -> None:
    reassign.restore_rows(
        session, id_col=CouponRedemption.id, member_col=CouponRedemption.member_id,
        row_ids=list(row_ids), from_id=from_id, to_id=to_id,
    )  # fmt: skip
