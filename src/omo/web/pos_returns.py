"""The till's returns (CHK-3): find the order by its receipt — sold at any store or online, as
an omnichannel shop takes returns anywhere — see what is left to return of each line, and give
back the chosen units or all that is left — or first weigh what that gives back — through the
same use cases as the API's `/orders/lookup`, `/orders/{id}/refund-quote` and
`/orders/{id}/refund`. The refund's key is made when the order is shown:
pressing the button twice gives back once."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from omo.apikeys.service import Principal
from omo.checkout import receipts, refunds
from omo.checkout.receipts import OrderDetail
from omo.checkout.refunds import (
    RefundLine,
    RefundLines,
    RefundQuote,
    RefundRequest,
    RefundResult,
)
from omo.commerce.channels import Channel
from omo.db import UnitOfWork
from omo.shared.errors import Forbidden, ValidationFailed
from omo.users import service as users
from omo.users.roles import Permission, may
from omo.users.service import SignedIn
from omo.web.forms import whole_number

CHANNELS = [c.value for c in Channel]


def find(uow: UnitOfWork, *, form: dict[str, Any], unit: Decimal) -> OrderDetail:
    number = str(form.get("receipt", "")).strip()
    if not number:
        raise ValidationFailed("type or scan the receipt's order number", field="receipt")
    channel = str(form.get("channel") or "pos")
    if channel not in CHANNELS:
        raise ValidationFailed(
            f"unknown channel {channel!r}", field="channel", ctx={"channel": channel}
        )
    return receipts.find_order(uow, channel=Channel(channel), external_id=number, unit=unit)


def new_refund_key() -> str:
    return f"UI-RF-{secrets.token_hex(6)}"


def give_back(
    uow: UnitOfWork, *, form: dict[str, Any], user: SignedIn, unit: Decimal
) -> RefundResult:
    """Refund the units chosen per line (`ret<line_no>`), or — `whole` — all that is left."""
    order_id = whole_number(form.get("order_id"), "order_id")
    key = str(form.get("refund_key", ""))
    if not key.startswith("UI-RF-"):
        raise ValidationFailed("find the order first", field="refund_key")
    req = RefundRequest(
        idempotency_key=key, lines=_chosen(form),
        reason=str(form.get("reason", "")).strip()[:300] or None,
    )  # fmt: skip
    till = Principal(name=f"ui:{user.username}", store_id=user.store_id)  # its store's day
    return refunds.refund(uow, order_id=order_id, req=req, actor=f"ui:{user.username}",
                          approved_by=_approver(uow, form=form, user=user), unit=unit,
                          till=till)  # fmt: skip


def weigh(uow: UnitOfWork, *, form: dict[str, Any], unit: Decimal) -> RefundQuote:
    """What giving back the units chosen (or all that is left) would give back now, and whether
    a manager must approve it: nothing is given back."""
    order_id = whole_number(form.get("order_id"), "order_id")
    return refunds.quote(uow, order_id=order_id, req=RefundLines(lines=_chosen(form)), unit=unit)


def _chosen(form: dict[str, Any]) -> list[RefundLine] | None:
    """The units chosen per line (`ret<line_no>`); None for all that is left (`whole`)."""
    if form.get("whole"):
        return None
    lines = []
    for name, value in sorted(form.items()):
        if name.startswith("ret") and name[3:].isdigit() and str(value).strip():
            units = whole_number(value, name)
            if units < 0:
                raise ValidationFailed("a number of units, 0 or more", field=name)
            if units:
                lines.append(RefundLine(line_no=int(name[3:]), quantity=units))
    if not lines:
        raise ValidationFailed("choose how many of which items come back", field="lines")
    return lines


def _approver(uow: UnitOfWork, *, form: dict[str, Any], user: SignedIn) -> str | None:
    """Who may let this refund past the returns policy: the user, if their role approves
    refunds; else the manager who typed their name and password at this till (one of this
    store's, or one for every store). None: nobody — the policy decides whether that will do."""
    if may(user.role, Permission.APPROVE_REFUNDS):
        return f"ui:{user.username}"
    name = str(form.get("approver", "")).strip()
    if not name:
        return None
    manager = users.check_password(
        uow, username=name, password=str(form.get("approver_password", ""))
    )
    if (
        manager is None
        or not may(manager.role, Permission.APPROVE_REFUNDS)
        or (manager.store_id is not None and manager.store_id != user.store_id)
    ):
        raise Forbidden(
            "no manager of this store with that name and password", code="approval_refused",
            field="approver",
        )  # fmt: skip
    return f"ui:{manager.username}"
