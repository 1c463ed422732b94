"""The seed playbook as ready-made journeys a merchant switches on (saved disabled), with the
coupon templates they give. Amounts are starting points to edit, not advice."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from omo.coupons import service as coupons
from omo.coupons.rules import CouponTemplate
from omo.db import UnitOfWork
from omo.journeys import service as journeys

COUPONS: dict[str, dict[str, Any]] = {
    "FIRST100": {"name": "首購禮 滿500折100", "kind": "spend_get_off", "spend": Decimal(500),
                 "amount": Decimal(100), "valid_days": 30},
    "BIRTHDAY200": {"name": "生日禮 折200", "kind": "amount_off", "amount": Decimal(200),
                    "min_spend": Decimal(800), "valid_days": 31, "per_member_limit": 100},
    "SAMPLE": {"name": "回店禮 免費試用品", "kind": "free_item", "free_sku": "SAMPLE",
               "valid_days": 30, "per_member_limit": 100},
    "BOOST150": {"name": "升等加碼 滿1000折150", "kind": "spend_get_off", "spend": Decimal(1000),
                 "amount": Decimal(150), "valid_days": 30, "per_member_limit": 100},
}  # fmt: skip


def _send(channel: str, template: str) -> dict[str, str]:
    return {"type": "send", "channel": channel, "template": template}


def _coupon(code: str) -> dict[str, str]:
    return {"type": "issue_coupon", "template": code}


JOURNEYS: dict[str, dict[str, Any]] = {
    "welcome": {
        "name": "入會歡迎 + 首購禮", "trigger": {"kind": "joined"},
        "steps": [_coupon("FIRST100"), _send("email", "welcome"), _send("line", "welcome")],
    },
    "first_purchase_nudge": {
        "name": "入會 30 天未購 → 簡訊首購優惠",
        "trigger": {"kind": "no_purchase_since_join", "days": 30},
        "steps": [_coupon("FIRST100"), _send("sms", "first_purchase_offer")],
    },
    "cart_abandoned": {
        "name": "購物車放棄 12 小時 → e-mail 提醒",
        "trigger": {"kind": "cart_abandoned", "hours": 12},
        "conversion_days": 7,
        "steps": [_send("email", "cart_reminder")],
    },
    "birthday": {
        "name": "生日月禮券", "trigger": {"kind": "birthday_month"}, "conversion_days": 31,
        "steps": [_coupon("BIRTHDAY200"), _send("line", "birthday"), _send("email", "birthday")],
    },
    "win_back": {
        "name": "沉睡 60 天 → 試用品喚回", "trigger": {"kind": "dormant", "days": 60},
        "conversion_days": 30,
        "steps": [_coupon("SAMPLE"), _send("sms", "win_back"), {"type": "wait", "days": 14},
                  {"type": "condition", "if": "no_purchase_since_entry"},
                  _send("email", "win_back")],
    },
    "upgrade_challenge": {
        "name": "高潛力 → 升等挑戰",
        "trigger": {"kind": "segment", "segment": "high_potential", "every_days": 90},
        "conversion_days": 30,
        "steps": [_coupon("BOOST150"), _send("email", "upgrade_challenge")],
    },
    "points_expiring": {
        "name": "點數 30 天內到期 → LINE 提醒", "control_share": 0,
        "trigger": {"kind": "points_expiring", "days": 30, "min_points": 50},
        "steps": [_send("line", "points_expiring"), _send("email", "points_expiring")],
    },
    "repurchase": {
        "name": "回購週期到 → LINE 補貨提醒", "trigger": {"kind": "repurchase_due"},
        "steps": [_send("line", "repurchase_reminder")],
    },
    "nps_care": {
        "name": "NPS 低分 → 門市關懷", "trigger": {"kind": "low_feedback", "max_score": 6},
        "control_share": 0, "conversion_days": 30,
        "steps": [{"type": "create_task", "kind": "care_call",
                   "note": "NPS 低分：請於 3 日內致電關懷，了解原因並記錄"},
                  {"type": "add_tag", "tag": "detractor"}],
    },
}  # fmt: skip


def seed(uow: UnitOfWork, *, enable: bool = False) -> list[str]:
    """Save the playbook (coupon templates that are missing, then the journeys); existing
    journeys a merchant changed are left as they are. Returns the journeys' keys."""
    have = {t.code for t in coupons.list_templates(uow)}
    for code, template in COUPONS.items():
        if code not in have:
            coupons.put_template(
                uow, code=code, template=CouponTemplate.model_validate(template), actor="playbook"
            )
    existing = {j.key for j in journeys.list_journeys(uow)}
    for key, definition in JOURNEYS.items():
        if key not in existing:
            journeys.save(uow, key=key, raw=definition, actor="playbook")
        if enable:
            journeys.set_enabled(uow, key=key, enabled=True, actor="playbook")
    return list(JOURNEYS)
